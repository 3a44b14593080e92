"""What to tell whom: the outbox rows that services write inside their own transactions.

Nothing here sends anything. A service that changes a registration or an event calls these functions
before it commits, so the change and its messages commit together (transactional outbox); the sender
(events/notifications/mailer.py) delivers them later. Opt-outs are honoured at send time, so a preference changed in
the meantime still counts.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from sqlalchemy import JSON, Integer, Text, bindparam, cast, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from events.localtime import site_zone
from events.models import (
    Event,
    Membership,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    utcnow,
)

# The switches on the account page: each turns off a family of messages.
PREFERENCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "registration": (_("My registrations (confirmed, waitlist, promotion, removal)"),
                     ("registration.confirmed", "registration.waitlisted", "registration.promoted",
                      "registration.offered", "registration.accepted", "registration.offer_expired",
                      "registration.removed",
                      "registration.left")),
    "event_changes": (_("Changes and cancellations of my events"), ("event.changed", "event.cancelled")),
    "reminders": (_("Reminders the day before my events"), ("event.reminder",)),
    "organisers": (_("Messages from the organisers of my events"), ("event.message",)),
    "decisions": (_("Approval decisions on my association's events"), ("event.approved", "event.declined")),
    "digest": (_("Daily digest of the approval queue (staff)"), ("digest.approval_queue",)),
    "followed": (_("New events of the associations I follow"), ("association.new_event", "digest.followed")),
}
KIND_PREFERENCE = {kind: key for key, (_label, kinds) in PREFERENCES.items() for kind in kinds}


async def notify(
    session: AsyncSession, *, kind: str, recipient_ids: list[int] | tuple[int, ...], event_id: int | None = None,
    payload: dict[str, Any] | None = None, send_after: datetime | None = None,
) -> None:
    if not recipient_ids:
        return
    await session.execute(insert(OutboxMessage), [
        message_row(kind, recipient_id, event_id, payload, send_after) for recipient_id in recipient_ids])


def message_row(kind: str, recipient_id: int, event_id: int | None, payload: dict[str, Any] | None = None,
                 send_after: datetime | None = None) -> dict[str, Any]:
    now = utcnow()
    return {"kind": kind, "recipient_id": recipient_id, "event_id": event_id, "payload": payload or {},
            "status": OutboxStatus.PENDING, "send_after": send_after or now, "attempts": 0, "last_error": "",
            "created_at": now}


async def notify_registrants(
    session: AsyncSession, *, kind: str, event_id: int, statuses: tuple[RegistrationStatus, ...],
    payload: dict[str, Any] | None = None,
) -> None:
    """One message per registrant in ``statuses``, in a single INSERT … SELECT: cancelling an event with
    thousands of registrations writes its messages in one statement and returns at once."""
    now = utcnow()
    rows = select(
        literal(kind), Registration.user_id, Registration.event_id, literal(payload or {}, JSON),
        literal(OutboxStatus.PENDING, OutboxMessage.status.type), literal(now, OutboxMessage.send_after.type),
        literal(0), literal(""), literal(now, OutboxMessage.created_at.type),
    ).where(Registration.event_id == event_id, Registration.status.in_(statuses))
    await session.execute(insert(OutboxMessage).from_select(
        ["kind", "recipient_id", "event_id", "payload", "status", "send_after", "attempts", "last_error",
         "created_at"], rows))


def reminder_time(starts_at: datetime) -> datetime:
    """By default the day before, at 18:00 Paris time (settings.REMINDER_HOUR)."""
    day_before = starts_at.astimezone(site_zone()).date() - timedelta(days=1)
    return datetime.combine(day_before, time(settings.REMINDER_HOUR), tzinfo=site_zone())


def _reminder_key(event_id: int, user_id: int) -> str:
    return f"reminder:{event_id}:{user_id}"


async def reminder_schedule(session: AsyncSession, *, event: Event, user_id: int) -> None:
    """(Re)arm the reminder of one confirmed registration. The caller holds the event's lock.

    One statement (an upsert on the dedupe key): a new reminder, or the existing one re-armed unless a
    sender is delivering it right now."""
    when = reminder_time(event.starts_at)
    if when > utcnow():  # else too late for a reminder: the event is tomorrow or sooner
        await _reminders_upsert(session, [_reminder_row(event.id, user_id, when)])


def _reminder_row(event_id: int, user_id: int, when: datetime) -> dict[str, Any]:
    return {"kind": "event.reminder", "recipient_id": user_id, "event_id": event_id, "payload": {},
            "status": OutboxStatus.PENDING, "send_after": when, "dedupe_key": _reminder_key(event_id, user_id),
            "attempts": 0, "last_error": "", "created_at": utcnow()}


def _outbox_upsert(dialect_insert):
    """Insert outbox rows: a reminder already there (same dedupe key) is re-armed unless a sender is delivering
    it right now. Built once per dialect and run with a list of rows (executemany: one statement text whatever
    the count, so neither compiled nor prepared again per batch size)."""
    statement = dialect_insert(OutboxMessage)
    return statement.on_conflict_do_update(
        index_elements=[OutboxMessage.dedupe_key],
        set_={"status": OutboxStatus.PENDING, "send_after": statement.excluded.send_after, "attempts": 0,
              "last_error": "", "sent_at": None},
        where=OutboxMessage.status != OutboxStatus.SENDING)


_OUTBOX_UPSERT = {"postgresql": _outbox_upsert(postgresql.insert), "sqlite": _outbox_upsert(sqlite.insert)}


async def _reminders_upsert(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    # Core, on the session's connection: the ORM's bulk path adds work and nothing we use here.
    connection = await session.connection()
    await connection.execute(_OUTBOX_UPSERT[connection.dialect.name], rows)


async def reminders_drop(session: AsyncSession, *, event_id: int, user_id: int | None = None) -> None:
    """Pending reminders of an event (or of one registrant) will not be sent."""
    statement = (update(OutboxMessage)
                 .where(OutboxMessage.event_id == event_id, OutboxMessage.kind == "event.reminder",
                        OutboxMessage.status == OutboxStatus.PENDING)
                 .values(status=OutboxStatus.DROPPED))
    if user_id is not None:
        statement = statement.where(OutboxMessage.recipient_id == user_id)
    await session.execute(statement)


async def reminders_reschedule(session: AsyncSession, *, event: Event) -> None:
    """The event moved: its pending reminders follow it."""
    await session.execute(update(OutboxMessage)
                          .where(OutboxMessage.event_id == event.id, OutboxMessage.kind == "event.reminder",
                                 OutboxMessage.status == OutboxStatus.PENDING)
                          .values(send_after=reminder_time(event.starts_at)))


async def association_editors(session: AsyncSession, *, association_id: int) -> list[int]:
    """Who hears of an approval decision: the association's editors and managers."""
    rows = await session.execute(select(Membership.user_id).where(
        Membership.association_id == association_id, Membership.role.in_((Role.EDITOR, Role.MANAGER))))
    return list(rows.scalars())


async def registration_messages(
    session: AsyncSession, *, event: Event, user_id: int, status: RegistrationStatus, waitlist_position: int | None
) -> None:
    """A student registered (or was added): tell them, and arm the reminder if confirmed."""
    await registrations_messages(session, event=event, placed=[(user_id, status, waitlist_position)])


def registrations_message_rows(
    *, event: Event, placed: list[tuple[int, RegistrationStatus, int | None]]
) -> list[dict[str, Any]]:
    """The outbox rows of a registration batch (user, status, place in line): a message to each student, and
    the reminder of each confirmed one (none when the event is tomorrow or sooner)."""
    when = reminder_time(event.starts_at)
    arm = when > utcnow()
    rows: list[dict[str, Any]] = []
    for user_id, status, waitlist_position in placed:
        if status == RegistrationStatus.CONFIRMED:
            rows.append({**message_row("registration.confirmed", user_id, event.id), "dedupe_key": None})
            if arm:
                rows.append(_reminder_row(event.id, user_id, when))
        elif status == RegistrationStatus.WAITLISTED:
            rows.append({**message_row("registration.waitlisted", user_id, event.id,
                                        {"position": waitlist_position}), "dedupe_key": None})
        # An entry in a lottery's draw is told by the page at once, and by the message of the draw's result.
    return rows


async def registrations_messages(
    session: AsyncSession, *, event: Event, placed: list[tuple[int, RegistrationStatus, int | None]]
) -> None:
    """Students registered (a registration batch: user, status, place in line): tell each, and arm the
    reminder of each confirmed one, all in ONE statement (an upsert on the reminders' dedupe key; the other
    messages have no key, so they never conflict): a batch of a rush holds the event's lock for one round
    trip of messages, not one per student. The caller holds the event's lock. (On PostgreSQL the
    registration batch writes the same rows inside its own single statement: ``upsert_from_arrays``.)"""
    rows = registrations_message_rows(event=event, placed=placed)
    if rows:
        await _reminders_upsert(session, rows)


# The same upsert as one part of a larger PostgreSQL statement (a registration batch writes its registrations,
# their messages and the live news in one round trip): the rows come as one array per column (``as_arrays``),
# so the statement's text is the same whatever the number of rows, and is prepared once per connection.
_ARRAY_COLUMNS = {"kind": postgresql.ARRAY(OutboxMessage.kind.type),
                  "recipient_id": postgresql.ARRAY(Integer),
                  "event_id": postgresql.ARRAY(Integer),
                  "payload": postgresql.ARRAY(Text),  # JSON texts, cast back below
                  "send_after": postgresql.ARRAY(OutboxMessage.send_after.type),
                  "dedupe_key": postgresql.ARRAY(OutboxMessage.dedupe_key.type),
                  "created_at": postgresql.ARRAY(OutboxMessage.created_at.type)}


def upsert_from_arrays():
    """The outbox upsert (``_outbox_upsert``'s rule) of rows given as the arrays of ``as_arrays``."""
    given = func.unnest(*(bindparam(f"outbox_{name}", type_=array) for name, array in _ARRAY_COLUMNS.items())
                        ).table_valued(*_ARRAY_COLUMNS).render_derived()
    rows = select(given.c.kind, given.c.recipient_id, given.c.event_id, cast(given.c.payload, JSON),
                  literal(OutboxStatus.PENDING, OutboxMessage.status.type), given.c.send_after, given.c.dedupe_key,
                  literal(0), literal(""), given.c.created_at)
    return _outbox_upsert(postgresql.insert).from_select(
        ["kind", "recipient_id", "event_id", "payload", "status", "send_after", "dedupe_key", "attempts",
         "last_error", "created_at"], rows)


def as_arrays(rows: list[dict[str, Any]]) -> dict[str, list]:
    """``rows`` (of ``registrations_message_rows``) as the parameters of ``upsert_from_arrays``."""
    return {f"outbox_{name}": [json.dumps(row[name]) if name == "payload" else row[name] for row in rows]
            for name in _ARRAY_COLUMNS}


async def promotion_messages(session: AsyncSession, *, event: Event, user_ids: tuple[int, ...]) -> None:
    await notify(session, kind="registration.promoted", recipient_ids=list(user_ids), event_id=event.id)
    for user_id in user_ids:
        await reminder_schedule(session, event=event, user_id=user_id)


async def offer_messages(session: AsyncSession, *, event: Event, user_ids: tuple[int, ...],
                         expires_at: datetime) -> None:
    """Seats offered from the waitlist: each student is told until when they may accept (no reminder yet:
    it is armed when they accept)."""
    await notify(session, kind="registration.offered", recipient_ids=list(user_ids), event_id=event.id,
                 payload={"expires_at": expires_at.isoformat()})


async def offer_accepted_messages(session: AsyncSession, *, event: Event, user_id: int) -> None:
    """A student accepted the seat offered to them: told (with the calendar invitation), and reminded the day
    before like every confirmed student. The caller holds the event's lock."""
    await notify(session, kind="registration.accepted", recipient_ids=[user_id], event_id=event.id)
    await reminder_schedule(session, event=event, user_id=user_id)

