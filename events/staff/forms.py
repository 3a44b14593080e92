"""Forms of the management area about events (those about people: ``events.staff.people_forms``). Datetimes
are typed in Europe/Paris and validated by Django, which refuses a time that does not exist or is ambiguous
around a DST change (no silent guess)."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.core.validators import validate_email
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from events.catalog.categories import CATEGORIES
from events.models import EventStatus
from events.rules import questions, restrictions
from events.rules.emails import normalize_email
from events.rules.seats import hold_fits
from events.rules.text import plain_text
from events.staff import series


def _is_email(address: str) -> bool:
    try:
        validate_email(address)
    except forms.ValidationError:
        return False
    return True


def _promos(text: str) -> list[int] | None:
    parts = [part for part in re.split(r"[\s,;]+", text) if part]
    if not all(part.isdigit() and 1950 <= int(part) <= 2100 for part in parts):
        raise forms.ValidationError(_("Type promo years as numbers separated by commas, e.g. 2029, 2030."))
    return sorted({int(part) for part in parts}) or None


def _addresses(text: str) -> list[str] | None:
    addresses = sorted({normalize_email(part) for part in re.split(r"[\s,;]+", text) if part})
    wrong = [address for address in addresses if not _is_email(address)]
    if wrong:
        raise forms.ValidationError(_("Not an e-mail address: %(wrong)s") % {"wrong": ", ".join(wrong[:5])})
    if len(addresses) > 2000:
        raise forms.ValidationError(_("At most 2,000 addresses."))
    return addresses or None


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def _datetime_field(label, required=True, help_text=""):
    return forms.DateTimeField(label=label, required=required, widget=LocalDateTimeInput(), help_text=help_text,
                               input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])


def _sane_year(value):
    if value is not None and not 2000 <= value.year <= 2100:
        raise forms.ValidationError(_("Choose a date between 2000 and 2100."))
    return value


class EventForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200, validators=[plain_text()])
    association_id = forms.TypedChoiceField(label=_("Association"), coerce=int)
    category = forms.ChoiceField(label=_("Category"), choices=list(CATEGORIES.items()))
    location = forms.CharField(label=_("Place"), max_length=200, required=False, validators=[plain_text()])
    starts_at = _datetime_field(_("Starts"))
    ends_at = _datetime_field(_("Ends"))
    all_day = forms.BooleanField(label=_("All-day event"), required=False)
    capacity = forms.IntegerField(label=_("Seats"), min_value=0, max_value=100_000, required=False,
                                  help_text=_("Leave empty for an unlimited event."))
    registration_opens_at = _datetime_field(_("Registration opens"), required=False,
                                            help_text=_("Empty: open as soon as the event is published."))
    registration_closes_at = _datetime_field(_("Registration closes"), required=False,
                                             help_text=_("Empty: when the event starts."))
    unregistration_closes_at = _datetime_field(_("Last moment to leave"), required=False,
                                               help_text=_("Empty: when the event starts."))
    lottery_minutes = forms.IntegerField(
        label=_("Lottery window (minutes)"), min_value=1, max_value=7 * 24 * 60, required=False,
        help_text=_("Empty: first come, first served. A number: every student who asks in that many minutes after "
                    "registration opens gets an entry, and the seats are drawn at random when they end (the rest "
                    "join the waitlist in drawn order). Needs an opening time."))
    members_open_at = _datetime_field(
        _("Priority: the association's members register from"), required=False,
        help_text=_("Empty: no priority for members. Before registration opens for everyone."))
    priority_promos = forms.CharField(
        label=_("Priority: these promo years"), required=False, max_length=200,
        help_text=_("The promo years students gave at sign-up, separated by commas (e.g. 2029, 2030)."))
    promos_open_at = _datetime_field(_("Priority: these promos register from"), required=False)
    priority_emails = forms.CharField(
        label=_("Priority: these e-mail addresses"), required=False, max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One address per line (or separated by commas): a team, the staff of the event, ..."))
    emails_open_at = _datetime_field(_("Priority: these addresses register from"), required=False)
    reserved_seats = forms.IntegerField(
        label=_("Seats held for the priority groups"), min_value=1, max_value=100_000, required=False,
        help_text=_("Empty: none. A number: until the time below, only students of the groups above may take these "
                    "seats; the others take the rest. Then every seat is open to everyone."))
    reserved_until = _datetime_field(_("Held until"), required=False)
    offer_hours = forms.IntegerField(
        label=_("Waitlist offers (hours to accept)"), min_value=1, max_value=14 * 24, required=False,
        help_text=_("Empty: a seat that frees up goes to the first in line at once. A number: it is offered to them, "
                    "and passes to the next in line unless they accept it within that many hours (less close to "
                    "the event: at most half the time left before it starts)."))
    restricted_to = forms.ChoiceField(label=_("Who may register"), initial=restrictions.EVERYONE, required=False,
                                      choices=[
        (restrictions.EVERYONE, _("Everyone")), (restrictions.MEMBERS, _("The association's members")),
        (restrictions.PROMOS, _("These promo years")), (restrictions.INVITED, _("The addresses on a list"))],
        widget=forms.RadioSelect)
    restricted_promos = forms.CharField(label=_("Open to these promo years"), required=False, max_length=200,
                                        help_text=_("Separated by commas, e.g. 2029, 2030."))
    restricted_emails = forms.CharField(label=_("Open to these e-mail addresses"), required=False,
                                        max_length=100_000, widget=forms.Textarea(attrs={"rows": 3}),
                                        help_text=_("One address per line (or separated by commas)."))
    hidden_from_others = forms.BooleanField(
        label=_("Members only: hide it from everyone else"), required=False,
        help_text=_("For an event open to the members: others do not see it in the lists, the calendar, the feeds, "
                    "nor its page. Unchecked, they see it and read why they cannot register."))
    description = forms.CharField(label=_("Description"), widget=forms.Textarea(attrs={"rows": 8}),
                                  max_length=20_000, required=False, validators=[plain_text(multiline=True)])

    def __init__(self, *args, associations: list[tuple[int, str]], only: tuple[str, ...] | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["association_id"].choices = associations
        if only is not None:  # a published event: managers change only the schedule, place and seats
            for name in list(self.fields):
                if name not in only:
                    del self.fields[name]

    def clean_title(self) -> str:
        return " ".join(self.cleaned_data["title"].split())

    def clean_starts_at(self):
        return _sane_year(self.cleaned_data.get("starts_at"))

    def clean_ends_at(self):
        return _sane_year(self.cleaned_data.get("ends_at"))

    def clean(self):
        cleaned = super().clean()
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts and ends and ends < starts:
            self.add_error("ends_at", _("The event cannot end before it starts."))
        opens, closes = cleaned.get("registration_opens_at"), cleaned.get("registration_closes_at")
        if opens and closes and closes < opens:
            self.add_error("registration_closes_at", _("Registration cannot close before it opens."))
        minutes = cleaned.get("lottery_minutes")
        if minutes and "registration_opens_at" in self.fields and not opens:
            self.add_error("lottery_minutes", _("A lottery needs an opening time: set when registration opens."))
        elif minutes and opens:
            draw = opens + timedelta(minutes=minutes)
            last = closes or starts
            if last and draw > last:
                self.add_error("lottery_minutes", _("The lottery window must end before registration closes "
                                                    "(or the event starts, when no closing is set)."))
        self._clean_priority(cleaned, opens)
        self._clean_reserve(cleaned, opens)
        self._clean_restriction(cleaned)
        for name in ("registration_opens_at", "registration_closes_at", "unregistration_closes_at",
                     "members_open_at", "promos_open_at", "emails_open_at", "reserved_until"):
            try:
                _sane_year(cleaned.get(name))
            except forms.ValidationError as error:
                self.add_error(name, error)
        return cleaned

    def clean_priority_promos(self) -> list[int] | None:
        return _promos(self.cleaned_data.get("priority_promos") or "")

    def clean_priority_emails(self) -> list[str] | None:
        return _addresses(self.cleaned_data.get("priority_emails") or "")

    def clean_restricted_promos(self) -> list[int] | None:
        return _promos(self.cleaned_data.get("restricted_promos") or "")

    def clean_restricted_emails(self) -> list[str] | None:
        return _addresses(self.cleaned_data.get("restricted_emails") or "")

    def _clean_restriction(self, cleaned: dict) -> None:
        """A group of promos or a list needs its years or addresses (and they go unless chosen); only a members'
        event may be hidden from the others."""
        if "restricted_to" not in self.fields:
            return
        kind = cleaned["restricted_to"] = cleaned.get("restricted_to") or restrictions.EVERYONE  # none chosen
        for name, needed_by in (("restricted_promos", restrictions.PROMOS),
                                ("restricted_emails", restrictions.INVITED)):
            if kind == needed_by and not cleaned.get(name) and name not in self.errors:
                self.add_error(name, _("Give the promo years.") if needed_by == restrictions.PROMOS
                               else _("Give the addresses of the students invited."))
            elif kind != needed_by:
                cleaned[name] = None
        if cleaned.get("hidden_from_others") and kind != restrictions.MEMBERS:
            self.add_error("hidden_from_others", _("Only an event open to the members can be hidden from others."))

    def _clean_priority(self, cleaned: dict, opens) -> None:
        """A priority opening comes before everyone's, which it needs; a list needs its time and the other way
        round; a lottery has no priority groups (when one asks in its window already does not matter)."""
        pairs = (("members_open_at", None), ("promos_open_at", "priority_promos"),
                 ("emails_open_at", "priority_emails"))
        for when_name, list_name in pairs:
            if when_name not in self.fields:
                continue
            when, listed = cleaned.get(when_name), cleaned.get(list_name) if list_name else True
            if list_name and bool(when) != bool(listed) and list_name not in self.errors:
                self.add_error(when_name if listed else list_name,
                               _("Give both the group and the time it registers from."))
            elif when and not opens:
                self.add_error(when_name, _("A priority opening needs an opening for everyone: set when "
                                            "registration opens."))
            elif when and opens and when >= opens:
                self.add_error(when_name, _("A priority opening comes before registration opens for everyone."))
            elif when and cleaned.get("lottery_minutes"):
                self.add_error(when_name, _("An event that opens by lottery has no priority openings: in its "
                                            "window, when one asks does not matter."))

    def _clean_reserve(self, cleaned: dict, opens) -> None:
        """Held seats need a capacity that holds them, a priority group to hold them for, and an end after
        registration opens for everyone (and no later than the start)."""
        if "reserved_seats" not in self.fields:
            return
        held, until = cleaned.get("reserved_seats"), cleaned.get("reserved_until")
        capacity, starts = cleaned.get("capacity"), cleaned.get("starts_at")
        if bool(held) != bool(until):
            self.add_error("reserved_until" if held else "reserved_seats",
                           _("Give both how many seats are held and until when."))
        elif held and (capacity is None or not hold_fits(held, capacity)):
            self.add_error("reserved_seats", _("The seats held cannot be more than the seats of the event."))
        elif held and not any(cleaned.get(name) for name in ("members_open_at", "promos_open_at", "emails_open_at")):
            self.add_error("reserved_seats", _("Seats are held for the priority groups: set at least one."))
        elif until and ((opens and until <= opens) or (starts and until > starts)):
            self.add_error("reserved_until", _("Seats are held until a time after registration opens for everyone "
                                               "and no later than the start."))

    def values(self) -> dict:
        values = dict(self.cleaned_data)
        if "description" in values:
            values["description"] = values["description"].replace("\r\n", "\n")
        if "location" in values:
            values["location"] = " ".join(values["location"].split())
        return values


class SeriesForm(EventForm):
    every_weeks = forms.IntegerField(label=_("Repeat every (weeks)"), min_value=1, max_value=8, initial=1)
    until = forms.DateField(label=_("Until (last date)"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        starts, ends, until = cleaned.get("starts_at"), cleaned.get("ends_at"), cleaned.get("until")
        if starts and until:
            if until < starts.date():
                self.add_error("until", _("The last date is before the first event."))
            elif (until - starts.date()).days > 366:
                self.add_error("until", _("A series covers one year at most."))
            elif ends and cleaned.get("every_weeks"):
                try:  # every date must be a time that exists once in Paris (events/series.py)
                    series.occurrences(starts_at=starts, ends_at=ends, every_weeks=cleaned["every_weeks"],
                                       until=until, zone=ZoneInfo(settings.TIME_ZONE))
                except series.OccurrenceTimeInvalid as error:
                    self.add_error("starts_at", str(error))
        return cleaned

    def values(self) -> dict:
        values = super().values()
        values.pop("every_weeks"), values.pop("until")
        return values


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason (shown to the association and to registered students)"),
                             widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                             validators=[plain_text(multiline=True)])


class QuestionForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=[("text", _("Text")), ("choice", _("One choice among several")),
                                                       ("yes_no", _("Yes or no"))])
    label = forms.CharField(label=_("Question"), max_length=questions.LABEL_MAX, validators=[plain_text()])
    choices = forms.CharField(label=_("Choices (one per line)"), required=False,
                              widget=forms.Textarea(attrs={"rows": 4}), validators=[plain_text(multiline=True)],
                              help_text=format_lazy(_("For a question with choices only: at most {count}, each at "
                                                      "most {length} characters."), count=questions.CHOICES_MAX,
                                                    length=questions.CHOICE_MAX))
    required = forms.BooleanField(label=_("An answer is required"), required=False)

    def clean(self):
        cleaned = super().clean()
        lines = [" ".join(line.split()) for line in (cleaned.get("choices") or "").splitlines()]
        choices = list(dict.fromkeys(line for line in lines if line))  # in order, without repeats
        if cleaned.get("kind") == "choice":
            if len(choices) < 2:
                self.add_error("choices", _("Give at least two choices, one per line."))
            elif len(choices) > questions.CHOICES_MAX or any(len(choice) > questions.CHOICE_MAX for choice in choices):
                self.add_error("choices", _("At most %(count)d choices, each at most %(length)d characters.")
                               % {"count": questions.CHOICES_MAX, "length": questions.CHOICE_MAX})
        cleaned["choices"] = choices if cleaned.get("kind") == "choice" else []
        return cleaned


class AnswersDeadlineForm(forms.Form):
    answers_close_at = _datetime_field(_("Answers can be changed until"), required=False,
                                       help_text=_("Empty: until the event starts."))

    def clean_answers_close_at(self):
        return _sane_year(self.cleaned_data.get("answers_close_at"))


class ImageForm(forms.Form):
    """A poster or a logo: upload a new image (its checks are hyperion/images.py's, when the form is valid),
    change the text alternative of the one there is, or remove it."""

    image = forms.FileField(label=_("Image"), required=False, allow_empty_file=False,
                            help_text=_("JPEG, PNG, WebP or GIF. Only its pixels are kept: no location, no "
                                        "camera details."),
                            widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}))
    alt = forms.CharField(label=_("Text alternative"), required=False, max_length=300, validators=[plain_text()],
                          help_text=_("What the image shows, for those who cannot see it (read aloud by screen "
                                      "readers). Required with an image."))
    remove = forms.BooleanField(label=_("Remove the image"), required=False)

    def __init__(self, *args, has_image: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.has_image = has_image
        if not has_image:
            del self.fields["remove"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("remove"):
            if cleaned.get("image"):
                raise forms.ValidationError(_("Either upload an image or remove it, not both."))
            return cleaned
        if not cleaned.get("image") and not self.has_image:
            self.add_error("image", _("Choose an image to upload."))
        elif not (cleaned.get("alt") or "").strip() and "alt" not in self.errors:
            self.add_error("alt", _("Say what the image shows: it is required with an image."))
        return cleaned


class EventListFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("Any status")), *[(s.value, s.value) for s in EventStatus]])
    association = forms.TypedChoiceField(label=_("Association"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args, associations: list[tuple[int, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["association"].choices = [("", _("All associations")), *associations]
