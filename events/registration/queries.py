"""Reads of the registration feature: My events, and the confirmed registrations that overlap a new one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select

from events.catalog.queries import EVENT_ROW_COLUMNS, EventRow, event_row
from events.models import (
    Association,
    Event,
    Registration,
    RegistrationStatus,
)
from events.rules import visibility
from events.rules.seats import waitlist_position_of
from hyperion import db


@dataclass(frozen=True, slots=True)
class MyEventRow:
    event: EventRow
    status: RegistrationStatus
    waitlist_position: int | None
    registration_id: int = 0


_MY_REGISTRATIONS = (
    select(*EVENT_ROW_COLUMNS, Registration.id.label("my_id"), Registration.status.label("my_status"),
           waitlist_position_of(Registration).label("my_position"))
    .join(Association, Association.id == Event.association_id)
    .join(Registration, Registration.event_id == Event.id)
    .where(Registration.user_id == bindparam("user_id"))
    .order_by(Event.starts_at, Event.id)
)


async def my_registrations(session: db.Reader, *, user_id: int) -> list[MyEventRow]:
    """Every event the user registered for (any state), soonest first."""
    return [
        MyEventRow(event_row(row), row.my_status,
                   row.my_position if row.my_status == RegistrationStatus.WAITLISTED else None, row.my_id)
        for row in await session.execute(_MY_REGISTRATIONS, {"user_id": user_id})
    ]


# Built once (every registration runs it): building a SELECT costs more CPU than running it.
_CONFIRMED_OVERLAPS = (
    select(Event.title)
    .join(Registration, Registration.event_id == Event.id)
    .where(Registration.user_id == bindparam("user_id"), Registration.status == RegistrationStatus.CONFIRMED,
           visibility.going_ahead(), Event.id != bindparam("exclude_event_id"),
           Event.starts_at < bindparam("ends_at"), Event.ends_at > bindparam("starts_at"))
    .order_by(Event.starts_at)
)


async def confirmed_overlaps(
    session: db.Reader, *, user_id: int, starts_at: datetime, ends_at: datetime, exclude_event_id: int
) -> list[str]:
    """Titles of the user's confirmed, not cancelled events that overlap [starts_at, ends_at)."""
    rows = await session.execute(_CONFIRMED_OVERLAPS, {
        "user_id": user_id, "starts_at": starts_at, "ends_at": ends_at, "exclude_event_id": exclude_event_id})
    return list(rows.scalars())
