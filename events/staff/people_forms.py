"""Forms of the management area about people: attendees (added, written to, checked in at the door),
associations and their members, users, and the audit log's filter."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from events.models import Role
from events.rules import tickets
from events.rules.text import plain_text

# (The words of events.staff.people.TicketNotValid: a code too long is no ticket either.)
_NOT_A_TICKET = _("This is not a ticket of this site: check that the whole code was read.")


class AttendeeAddForm(forms.Form):
    email = forms.EmailField(label=_("Student's e-mail"), max_length=254)


class AttendeesMessageForm(forms.Form):
    """An organisers' message to an event's registrants. ``reach`` (events.staff.mailing.audience_reach) puts
    each group's size in its label."""

    audience = forms.ChoiceField(label=_("To"), widget=forms.RadioSelect)
    subject = forms.CharField(label=_("Subject"), max_length=150, validators=[plain_text()])
    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 10}), max_length=5000,
                           validators=[plain_text(multiline=True)],
                           help_text=_("Plain text; a blank line starts a new paragraph. The e-mail adds the "
                                       "event's date, place and link."))
    # The preview's nonce: the same message confirmed twice goes out once (events.staff.mailing).
    send_key = forms.RegexField(regex=r"^[0-9a-f]{32}$", required=False, widget=forms.HiddenInput, error_messages={
        "invalid": _("This preview cannot be sent as it is: preview the message again.")})

    def __init__(self, *args, reach: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        labels = {"confirmed": _("Confirmed (%(count)d)"), "waitlist": _("Waitlist and seats offered (%(count)d)"),
                  "both": _("Both (%(count)d)")}
        self.fields["audience"].choices = [(str(audience), labels[str(audience)] % {"count": count.recipients})
                                           for audience, count in reach.items()]


class CheckInScanForm(forms.Form):
    """A ticket's code, scanned or typed at the door (``rules.tickets.ticket_read`` reads the rest)."""

    code = forms.CharField(label=_("Ticket code"), max_length=tickets.CODE_MAX, validators=[plain_text()],
                           error_messages={"required": _NOT_A_TICKET, "max_length": _NOT_A_TICKET})


class AssociationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120, validators=[plain_text()])
    slug = forms.SlugField(label=_("Address (slug)"), max_length=80,
                           help_text=_("Letters, digits and dashes: /associations/<slug>/"))
    description = forms.CharField(label=_("Description"), widget=forms.Textarea(attrs={"rows": 4}),
                                  required=False, max_length=5000, validators=[plain_text(multiline=True)])
    no_show_delay_hours = forms.IntegerField(
        label=_("No-shows register later (hours)"), min_value=1, max_value=7 * 24, required=False,
        help_text=_("Empty: no delay. A number: a student who held a seat at one of the association's events where "
                    "attendance was taken (check-in), and did not come, registers that many hours after the others "
                    "at its next openings. The student sees why and until when."))
    no_show_penalty_days = forms.IntegerField(
        label=_("For how many days after the missed event"), min_value=1, max_value=365, initial=30, required=False,
        help_text=_("Empty: 30."))

    def clean_no_show_penalty_days(self) -> int:
        return self.cleaned_data.get("no_show_penalty_days") or 30


class MemberForm(forms.Form):
    email = forms.EmailField(label=_("Member's e-mail"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=[
        (Role.MEMBER.value, _("Member")), (Role.EDITOR.value, _("Editor")), (Role.MANAGER.value, _("Manager")),
        ("none", _("Remove from the association"))])


class UserFlagsForm(forms.Form):
    is_staff = forms.BooleanField(label=_("Staff (moderator of the whole site)"), required=False)
    is_active = forms.BooleanField(label=_("Active (may log in)"), required=False)


class AuditFilterForm(forms.Form):
    action = forms.CharField(label=_("Action"), required=False, max_length=64)
    actor = forms.EmailField(label=_("By (e-mail)"), required=False, max_length=254)
    object_type = forms.ChoiceField(label=_("Object"), required=False, choices=[
        ("", _("Any")), ("event", _("Event")), ("registration", _("Registration")), ("user", _("User")),
        ("association", _("Association"))])
    object_id = forms.IntegerField(label=_("Object id"), required=False, min_value=1, max_value=2**31 - 1)
