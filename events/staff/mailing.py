"""Messages from an event's organisers to its attendees: who an audience reaches, and the sending.

A message is one outbox row per recipient (kind ``event.message``, the text in its payload), written in the
same transaction as its audit entry; the sender delivers them like every other e-mail, so the recipients'
opt-outs ("Messages from the organisers of my events") and a registration left in the meantime are honoured
when each one goes out (``events.notifications.mailer.drop_reason``), not only when the organiser pressed
the button.
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from sqlalchemy import ColumnElement, String, cast, exists, insert, literal, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.audit import audit_log
from events.errors import DomainError, Forbidden
from events.models import OutboxMessage, OutboxStatus, Registration, RegistrationStatus, User, utcnow
from events.rules import permissions, visibility
from events.rules.permissions import Actor
from events.staff.services import event_for_actor
from hyperion import db

KIND = "event.message"


class Audience(enum.StrEnum):
    CONFIRMED = "confirmed"
    WAITLIST = "waitlist"
    BOTH = "both"


# Who each audience reaches. A student offered a seat is in line for it: the waitlist's messages concern them.
AUDIENCE_STATUSES: dict[Audience, tuple[RegistrationStatus, ...]] = {
    Audience.CONFIRMED: (RegistrationStatus.CONFIRMED,),
    Audience.WAITLIST: (RegistrationStatus.OFFERED, RegistrationStatus.WAITLISTED),
    Audience.BOTH: (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED, RegistrationStatus.WAITLISTED),
}


class NoRecipients(DomainError):
    message = _("Nobody is registered in the chosen group: there is no one to send it to.")


class AlreadySent(DomainError):
    message = _("This message was already sent (the form was sent twice): it went out once.")


class EventNotGoingAhead(DomainError):
    message = _("Only the registrants of a published event can be written to.")


@dataclass(frozen=True, slots=True)
class Reach:
    """How many an audience counts, and how many of them turned the organisers' messages off."""

    registered: int
    opted_out: int

    @property
    def recipients(self) -> int:
        return self.registered - self.opted_out


def _reachable(event_id: int, statuses: tuple[RegistrationStatus, ...]) -> tuple[ColumnElement[bool], ...]:
    return (Registration.event_id == event_id, Registration.status.in_(statuses), User.is_active.is_(True),
            User.anonymised_at.is_(None))


async def audience_reach(session: db.Reader, *, event_id: int) -> dict[Audience, Reach]:
    """Each audience's size today (what the form and its preview show)."""
    everyone = AUDIENCE_STATUSES[Audience.BOTH]
    rows = (await session.execute(
        select(Registration.status, User.email_opt_outs).join(User, User.id == Registration.user_id)
        .where(*_reachable(event_id, everyone)))).all()
    preference = outbox.KIND_PREFERENCE[KIND]
    reach = {}
    for audience, statuses in AUDIENCE_STATUSES.items():
        chosen = [row for row in rows if row.status in statuses]
        reach[audience] = Reach(len(chosen), sum(1 for row in chosen if preference in (row.email_opt_outs or ())))
    return reach


async def attendees_message(
    session: AsyncSession, *, actor: Actor, event_id: int, audience: Audience, subject: str, body: str,
    send_key: str,
) -> int:
    """Write the message for everyone the audience counts now; return how many rows were written.

    ``send_key`` comes from the preview the organiser confirmed: the same key twice (a double click, the
    browser's resend) sends once. Each row's dedupe key carries it, so two submissions racing each other meet
    the outbox's unique index and the second writes nothing."""
    statuses = AUDIENCE_STATUSES[audience]
    key_prefix = f"message:{event_id}:{send_key}:"
    try:
        async with session.begin():
            event = await event_for_actor(session, actor, event_id)
            if not permissions.can_message_attendees(actor, association_id=event.association_id):
                raise Forbidden
            if not visibility.goes_ahead(event.status):
                raise EventNotGoingAhead
            if (await session.execute(select(exists().where(
                    OutboxMessage.dedupe_key.startswith(key_prefix, autoescape=True))))).scalar_one():
                raise AlreadySent
            now = utcnow()
            payload = {"subject": subject, "body": body, "statuses": [status.value for status in statuses]}
            rows = select(
                literal(KIND), Registration.user_id, literal(event_id), literal(payload, OutboxMessage.payload.type),
                literal(OutboxStatus.PENDING, OutboxMessage.status.type), literal(now, OutboxMessage.send_after.type),
                literal(0), literal(""), literal(now, OutboxMessage.created_at.type),
                literal(key_prefix) + cast(Registration.user_id, String),
            ).join(User, User.id == Registration.user_id).where(*_reachable(event_id, statuses))
            result = await session.execute(insert(OutboxMessage).from_select(
                ["kind", "recipient_id", "event_id", "payload", "status", "send_after", "attempts", "last_error",
                 "created_at", "dedupe_key"], rows))
            written = typing.cast(CursorResult[typing.Any], result).rowcount  # an INSERT's result: the rows written
            if not written:
                raise NoRecipients
            await audit_log(session, actor_id=actor.id, action="event.message_sent", object_type="event",
                            object_id=event.id, association_id=event.association_id,
                            changes={"audience": [None, audience.value], "subject": [None, subject],
                                     "recipients": [None, written]})
    except IntegrityError as error:
        if "dedupe_key" not in str(error.orig):  # PostgreSQL and SQLite both name the column
            raise
        raise AlreadySent from error  # the same key, committed by a submission racing this one
    return written
