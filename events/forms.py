"""Validation of everything users send, with Django forms (no ORM: plain forms, cleaned values)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from types import SimpleNamespace

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from events.categories import CATEGORIES
from events.queries import EventFilters

MAX_PASSWORD_LENGTH = 4096  # PBKDF2 on a megabyte-long password is a denial of service

# Bidirectional controls (embeddings, overrides, isolates, marks): they reorder the text shown after them, so a
# name or a title could make the page, a list or an e-mail read other than what was typed ("Trojan Source").
# They are format characters (Cf) like the rest, listed for the reader.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# The joiners are format characters too, but they only shape what is around them (emoji sequences such as
# flags and families, Persian and Indic scripts) and never move text.
_JOINERS = frozenset("\u200c\u200d")
_LINE_BREAKS = frozenset("\n\r\t")


def plain_text(*, multiline: bool = False):
    """The validator of every name, title, place and reason people type: no control character (category Cc;
    a multi-line text keeps its line breaks and tabs), no bidirectional control and no other format character
    (Cf), no surrogate, no line or paragraph separator. Such characters are invisible: they hide or reorder
    text, and PostgreSQL refuses NUL."""
    allowed = _LINE_BREAKS if multiline else frozenset()

    def validate(value: str) -> None:
        for char in value:
            if char in allowed or char in _JOINERS:
                continue
            if char in BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
                raise forms.ValidationError(
                    _("This text contains invisible control characters (such as right-to-left marks): "
                      "remove them."), code="control_character")

    return validate


@dataclass(frozen=True)
class _PasswordOwner:
    """What Django's UserAttributeSimilarityValidator compares a password with. It names the field a
    password resembles through ``user._meta.get_field(name).verbose_name``: answered here without a model."""

    email: str
    display_name: str

    class _meta:  # noqa: N801 - the attribute name Django's validator reads
        @staticmethod
        def get_field(name: str):
            return SimpleNamespace(verbose_name=_("e-mail") if name == "email" else _("display name"))


class SignupForm(forms.Form):
    email = forms.EmailField(label=_("School e-mail"), max_length=254)
    display_name = forms.CharField(label=_("Display name"), max_length=80, min_length=2, validators=[plain_text()])
    promo = forms.IntegerField(label=_("Promo (graduation year)"), min_value=1950, max_value=2100, required=False)
    password1 = forms.CharField(label=_("Password"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                                help_text=_("At least 10 characters, not too common, not all digits."))
    password2 = forms.CharField(label=_("Password again"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if len(email) > 254:  # some characters grow when lower-cased ("İ")
            raise forms.ValidationError(_("This e-mail address is too long."))
        domains = settings.SIGNUP_EMAIL_DOMAINS
        if domains and email.rsplit("@", 1)[-1] not in domains:
            raise forms.ValidationError(
                _("Use your school e-mail address (%(domains)s).") % {"domains": ", ".join(domains)})
        return email

    def clean_display_name(self) -> str:
        return " ".join(self.cleaned_data["display_name"].split())

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords differ."))
        elif password1:
            owner = _PasswordOwner(cleaned.get("email") or "", cleaned.get("display_name") or "")
            try:
                password_validation.validate_password(password1, owner)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class LoginForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(label=_("Password"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class PasswordChangeForm(forms.Form):
    current_password = forms.CharField(label=_("Current password"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                                       widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    new_password1 = forms.CharField(label=_("New password"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                                    widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    new_password2 = forms.CharField(label=_("New password again"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                                    widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, owner_email: str = "", owner_name: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.owner = _PasswordOwner(owner_email, owner_name)

    def clean(self):
        cleaned = super().clean()
        new1, new2 = cleaned.get("new_password1"), cleaned.get("new_password2")
        if new1 and new2 and new1 != new2:
            self.add_error("new_password2", _("The two passwords differ."))
        elif new1:
            try:
                password_validation.validate_password(new1, self.owner)
            except forms.ValidationError as error:
                self.add_error("new_password1", error)
        return cleaned


class EventFilterForm(forms.Form):
    """The home page's filters, read from the query string (so a filtered view can be shared)."""

    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    # A slug, checked for shape only, so the list query need not wait for the associations menu; an
    # unknown slug simply matches nothing.
    association = forms.SlugField(label=_("Association"), required=False, max_length=80)
    category = forms.ChoiceField(label=_("Category"), required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    has_seats = forms.BooleanField(label=_("Seats left only"), required=False)

    def __init__(self, data) -> None:
        super().__init__(data)
        self.fields["category"].choices = [("", _("All categories")), *CATEGORIES.items()]

    def raw_values(self) -> dict[str, str]:
        """What the visitor typed, to show it back in the hand-written filter form."""
        data = self.data if self.is_bound else {}
        return {name: str(data.get(name, ""))[:200] for name in self.fields}

    @staticmethod
    def category_choices() -> list[tuple[str, str]]:
        return [(slug, str(label)) for slug, label in CATEGORIES.items()]

    def clean_q(self) -> str:
        # Control characters never reach the SQL (they would only make the search fail).
        return "".join(char for char in self.cleaned_data["q"] if char.isprintable()).strip()

    def _sane_date(self, name: str):
        value = self.cleaned_data.get(name)
        if value is not None and not (2000 <= value.year <= 2100):
            raise forms.ValidationError(_("Choose a date between 2000 and 2100."))
        return value

    def clean_date_from(self):
        return self._sane_date("date_from")

    def clean_date_to(self):
        return self._sane_date("date_to")

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_to < date_from:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def filters(self) -> EventFilters:
        """The valid filters; a field with an error is left out (and its error shown), never a 500."""
        if not self.is_bound:
            return EventFilters()
        self.is_valid()
        data = self.cleaned_data
        return EventFilters(
            association=data.get("association") or None,
            category=data.get("category") or None,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            has_seats=bool(data.get("has_seats")),
            query=data.get("q") or None,
        )


class NotificationPreferencesForm(forms.Form):
    """One checkbox per family of e-mails (events.notifications.PREFERENCES); checked means "send"."""

    def __init__(self, data=None, *, opt_outs: list[str]) -> None:
        from events.notifications import PREFERENCES

        super().__init__(data)
        for key, (label, _kinds) in PREFERENCES.items():
            self.fields[key] = forms.BooleanField(label=label, required=False, initial=key not in opt_outs)

    def opt_outs(self) -> list[str]:
        return [key for key, wanted in self.cleaned_data.items() if not wanted]
