"""The account forms (sign-up, log-in, password, e-mail preferences), with Django forms: no ORM, plain forms
and cleaned values."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from events.accounts.follows import FREQUENCIES, INSTANT
from events.rules.emails import normalize_email
from events.rules.text import plain_text

MAX_PASSWORD_LENGTH = 4096  # PBKDF2 on a megabyte-long password is a denial of service


@dataclass(frozen=True)
class PasswordOwner:
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
        email = normalize_email(self.cleaned_data["email"])
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
            owner = PasswordOwner(cleaned.get("email") or "", cleaned.get("display_name") or "")
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


class NewPasswordForm(forms.Form):
    """A new password, twice, checked by Django's validators against its owner's address and name."""

    new_password1 = forms.CharField(label=_("New password"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                                    widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    new_password2 = forms.CharField(label=_("New password again"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                                    widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, owner_email: str = "", owner_name: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.owner = PasswordOwner(owner_email, owner_name)

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


class PasswordChangeForm(NewPasswordForm):
    field_order = ["current_password", "new_password1", "new_password2"]
    current_password = forms.CharField(label=_("Current password"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                                       widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}))


class AccountDeleteForm(forms.Form):
    password = forms.CharField(label=_("Your password"), strip=False, max_length=MAX_PASSWORD_LENGTH,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class NotificationPreferencesForm(forms.Form):
    """One checkbox per family of e-mails (events.outbox.PREFERENCES); checked means "send"."""

    def __init__(self, data=None, *, opt_outs: list[str], follow_emails: str = INSTANT) -> None:
        from events.outbox import PREFERENCES

        super().__init__(data)
        for key, (label, _kinds) in PREFERENCES.items():
            self.fields[key] = forms.BooleanField(label=label, required=False, initial=key not in opt_outs)
        self.fields["follow_emails"] = forms.ChoiceField(
            label=_("The new events of the associations I follow come"), choices=FREQUENCIES, initial=follow_emails,
            widget=forms.RadioSelect, required=False)

    def opt_outs(self) -> list[str]:
        return [key for key, wanted in self.cleaned_data.items() if key != "follow_emails" and not wanted]

    def follow_emails(self) -> str:
        return self.cleaned_data.get("follow_emails") or INSTANT
