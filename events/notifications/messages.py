"""What an outbox message says: its subject, text and HTML in the recipient's language, its headers, the
links of account messages (made at send time, never stored) and the calendar invitation it carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

from django.conf import settings
from django.utils import translation
from django.utils.formats import date_format
from jinja2 import Environment, FileSystemLoader, select_autoescape

from events import localtime
from events.accounts import tokens
from events.catalog import presenters
from events.feeds import ical
from events.feeds.queries import FeedEventRow
from events.models import (
    EventStatus,
    RegistrationStatus,
    utcnow,
)
from events.rules import tickets

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def header_safe(text: str, limit: int = 150) -> str:
    """User text made fit for a header: no line breaks or control characters (no header injection)."""
    return " ".join(_CONTROL.sub(" ", text or "").split())[:limit]


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    kind: str
    attempts: int
    payload: dict
    recipient_id: int | None
    email: str | None
    display_name: str | None
    language: str | None
    opt_outs: list[str]
    active: bool
    event: FeedEventRow | None
    event_status: EventStatus | None
    decision_reason: str
    association_name: str | None
    registration_status: RegistrationStatus | None
    account: tokens.AccountState | None = None  # what the link of an account message is bound to
    registration_id: int | None = None  # the recipient's registration for the event, if any


# Messages about the recipient's account, with a link made at send time (never stored: events.accounts.tokens).
ACCOUNT_LINKS = {"account.verify": (tokens.VERIFY, "/account/verify/"),
                 "account.reset": (tokens.RESET, "/account/reset/"),
                 "account.signup_taken": (None, "/account/login/")}


NO_EVENT_KINDS = {"digest.approval_queue", "digest.followed", *ACCOUNT_LINKS}


def account_link(message: Claimed) -> str:
    purpose, path = ACCOUNT_LINKS[message.kind]
    if purpose is None:
        return f"{settings.SITE_URL}{path}"
    if message.account is None:  # drop_reason keeps such a message from being sent
        raise LookupError(f"outbox message {message.id}: no account to bind its link to")
    return f"{settings.SITE_URL}{path}{tokens.make(purpose, message.account)}/"


# The kinds that tell a student their place is confirmed: they carry the ticket (its QR code as a PNG, and the
# ticket page's address), if the registration is still confirmed when the message goes out.
TICKET_KINDS = frozenset({"registration.confirmed", "registration.promoted", "registration.accepted"})


def ticket_of(message: Claimed) -> str | None:
    if (message.kind in TICKET_KINDS and message.event is not None and message.registration_id is not None
            and message.registration_status == RegistrationStatus.CONFIRMED):
        return tickets.ticket_code(event_id=message.event.id, registration_id=message.registration_id)
    return None


# Which kinds carry an invitation, and whether it adds (REQUEST) or removes (CANCEL) the event.
INVITATIONS = {
    "registration.confirmed": False, "registration.promoted": False, "registration.accepted": False,
    "event.changed": False,
    "event.reminder": False, "registration.removed": True, "registration.left": True, "event.cancelled": True,
}


_templates = Environment(  # noqa: S701 - autoescape on for .html, off for the plain-text part
    loader=FileSystemLoader(str(settings.BASE_DIR / "templates" / "emails")),
    autoescape=select_autoescape(["html"]), extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
)
_templates.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
    translation.gettext, translation.ngettext, newstyle=True)


def paragraphs(text: str) -> list[str]:
    """A typed text's paragraphs (blank lines part them; the line breaks inside one are kept)."""
    return [part.strip() for part in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if part.strip()]


def _subject_and_lines(message: Claimed, queue: list[str]) -> tuple[str, list[str]]:
    _ = translation.gettext
    title = message.event.title if message.event else ""
    position = message.payload.get("position")
    texts = {
        "registration.confirmed": (_("Registration confirmed: %(title)s"),
                                   [_("Your place at '%(title)s' is confirmed.")]),
        "registration.waitlisted": (_("On the waitlist: %(title)s"),
                                    [_("'%(title)s' is full: you are on the waitlist, position %(position)s."),
                                     _("If a place frees up, it is yours automatically and we will tell you.")]),
        "registration.promoted": (_("You have a place: %(title)s"),
                                  [_("A place freed up at '%(title)s': it is yours, your registration is "
                                     "confirmed.")]),
        "registration.offered": (_("A seat is offered to you: %(title)s"),
                                  [_("A place freed up at '%(title)s' and it is offered to you, first in line. "
                                     "Accept it on the event's page before %(deadline)s, or it passes to the "
                                     "next in line. If you cannot come, decline it there: the next student "
                                     "gets it sooner.")]),
        "registration.accepted": (_("Seat accepted: %(title)s"),
                                   [_("You accepted the seat offered to you at '%(title)s': your place is "
                                      "confirmed.")]),
        "registration.offer_expired": (_("Offer expired: %(title)s"),
                                       [_("The seat offered to you at '%(title)s' was not accepted in time and "
                                          "passed to the next in line. You may join the waitlist again from "
                                          "the event's page.")]),
        "registration.removed": (_("Registration cancelled: %(title)s"),
                                 [_("The organisers removed your registration for '%(title)s'.")]),
        "registration.left": (_("You left: %(title)s"), [_("You are no longer registered for '%(title)s'.")]),
        "event.changed": (_("Changed: %(title)s"),
                          [_("'%(title)s', which you registered for, has changed. Here are the new details.")]),
        "event.cancelled": (_("Cancelled: %(title)s"), [_("'%(title)s' is cancelled.")]),
        "event.reminder": (_("Tomorrow: %(title)s"), [_("A reminder: you are expected at '%(title)s'.")]),
        "event.approved": (_("Approved: %(title)s"), [_("'%(title)s' is approved and published.")]),
        "event.declined": (_("Declined: %(title)s"),
                           [_("'%(title)s' was declined. You can change it and submit it again.")]),
        "association.new_event": (_("New: %(title)s"),
                                  [_("%(association)s, which you follow, published a new event.")]),
        "digest.followed": (_("This week at the associations you follow"),
                            [_("The associations you follow published these events:")]),
        "digest.approval_queue": (_("%(count)s events wait for approval"),
                                  [_("These events wait for your decision, oldest first:")]),
        "account.verify": (_("Confirm your e-mail address"),
                           [_("Open this link to confirm your address; then you can register for events. It "
                              "works once, for three days:")]),
        "account.reset": (_("Reset your password"),
                          [_("Someone (you, we hope) asked to reset the password of your account. Open this "
                             "link to choose a new one; it works once, for two hours:"),
                           _("If you did not ask, ignore this e-mail: your password stays as it is.")]),
        "account.signup_taken": (_("Someone tried to sign up with your address"),
                                 [_("Someone tried to create an account with your e-mail address, which already "
                                    "has one. If it was you, log in, or reset your password from the log-in "
                                    "page if you forgot it:"),
                                  _("If it was not you, you need not do anything: no account was created.")]),
    }
    if message.kind == "event.message":  # the organisers' own words: never a format string
        intro = _("A message from the organisers of '%(title)s' (%(association)s):") % {
            "title": title, "association": message.association_name or ""}
        return (_("%(title)s: %(subject)s") % {"title": title, "subject": message.payload.get("subject", "")},
                [intro, *paragraphs(message.payload.get("body", ""))])
    subject, lines = texts[message.kind]
    deadline = message.payload.get("expires_at")
    values = {"title": title, "position": position, "count": len(queue), "association": message.association_name,
              "deadline": date_format(localtime.local(datetime.fromisoformat(deadline)), "l j F Y, H:i")
              if deadline else ""}
    return subject % values, [line % values for line in lines]


def build(message: Claimed, *, queue: list[str] | None = None) -> EmailMessage:
    """The e-mail of an outbox row: plain text and HTML alternatives, an .ics where it concerns the
    recipient's calendar, headers that no user text can break."""
    language = message.language if message.language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
    queue = queue or []
    with translation.override(language):
        subject, lines = _subject_and_lines(message, queue)
        event = message.event
        ticket = ticket_of(message)
        context = {
            "name": message.display_name or "",
            "lines": lines,
            "event": event,
            "association_name": message.association_name,
            "when": (date_format(localtime.local(event.starts_at), "l j F Y") + ", " +
                     presenters.time_range_label(event.starts_at, event.ends_at, event.all_day)) if event else "",
            "reason": message.decision_reason if message.kind in ("event.cancelled", "event.declined") else "",
            "event_url": f"{settings.SITE_URL}/events/{event.slug}/" if event else "",
            "queue": queue,
            "queue_url": f"{settings.SITE_URL}/associations/" if message.kind == "digest.followed"
            else f"{settings.SITE_URL}/manage/queue/",
            "queue_label": translation.gettext("See the associations") if message.kind == "digest.followed"
            else translation.gettext("Open the approval queue"),
            "link": account_link(message) if message.kind in ACCOUNT_LINKS else "",
            "preferences_url": f"{settings.SITE_URL}/account/notifications/",
            "ticket_url": f"{settings.SITE_URL}/me/tickets/{message.registration_id}/" if ticket else "",
        }
        text = _templates.get_template("message.txt").render(context)
        html = _templates.get_template("message.html").render(context)
    email = EmailMessage()
    email["Subject"] = header_safe(subject, 200)
    email["From"] = settings.DEFAULT_FROM_EMAIL
    email["To"] = formataddr((header_safe(message.display_name or "", 80),
                              message.email))  # type: ignore[arg-type]  # drop_reason holds back None
    email["Date"] = format_datetime(utcnow())
    email["Message-ID"] = message_id(message.id)
    email["Auto-Submitted"] = "auto-generated"
    email["List-Unsubscribe"] = f"<{settings.SITE_URL}/account/notifications/>"
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    if event is not None and message.kind in INVITATIONS:
        cancel = INVITATIONS[message.kind] or (message.kind == "event.changed"
                                               and message.registration_status != RegistrationStatus.CONFIRMED)
        ics = ical.invitation(event, cancel=cancel, organizer=parseaddr(settings.DEFAULT_FROM_EMAIL)[1],
                               attendee=message.email,  # type: ignore[arg-type]  # drop_reason: not None
                               event_url=lambda slug: f"{settings.SITE_URL}/events/{slug}/")
        email.add_attachment(ics, maintype="text", subtype="calendar", filename="invitation.ics",
                             params={"method": "CANCEL" if cancel else "REQUEST"})
    if ticket is not None:
        email.add_attachment(tickets.ticket_png(ticket), maintype="image", subtype="png", filename="ticket.png")
    email["Content-Language"] = language  # after the parts: set_content() drops Content-* headers
    return email


def message_id(outbox_id: int) -> str:
    """Stable per outbox row: a message sent again after a crash keeps its Message-ID."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "hyperion.invalid"
    return f"<outbox-{outbox_id}@{domain}>"


def organisers_message_preview(*, event, association_name: str, subject: str, body: str) -> EmailMessage:
    """The e-mail an organisers' message will be, as its recipients get it (``event`` is the Event entity; the
    greeting shows a stand-in name): the preview the organiser confirms before sending."""
    row = FeedEventRow(event.id, event.slug, event.title, event.description, event.location, event.category,
                       event.starts_at, event.ends_at, event.all_day, event.status, event.sequence, event.updated_at)
    return build(Claimed(
        id=0, kind="event.message", attempts=0, payload={"subject": subject, "body": body}, recipient_id=None,
        email="recipient@example.invalid", display_name=translation.gettext("(the recipient's name)"),
        language=translation.get_language(), opt_outs=[], active=True, event=row, event_status=event.status,
        decision_reason="", association_name=association_name, registration_status=RegistrationStatus.CONFIRMED))
