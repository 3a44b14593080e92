"""Reads of the registration feature: My events, and the confirmed registrations that overlap a new one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import aliased

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


def _confirmed_overlaps():
    """The published event of the slug (its id), with the title of each of the user's confirmed events going
    ahead that overlaps it (one row per overlap, soonest first; one row with no title when none does)."""
    target = aliased(Event, name="target")
    mine = (select(Event.id, Event.title, Event.starts_at, Event.ends_at)
            .join(Registration, Registration.event_id == Event.id)
            .where(Registration.user_id == bindparam("user_id"), Registration.status == RegistrationStatus.CONFIRMED,
                   visibility.going_ahead())
            .subquery("mine"))
    return (
        select(target.id, mine.c.title)
        .select_from(target)
        .outerjoin(mine, and_(mine.c.id != target.id, mine.c.starts_at < target.ends_at,
                              mine.c.ends_at > target.starts_at))
        .where(target.slug == bindparam("slug"), visibility.published(target.status))
        .order_by(mine.c.starts_at)
    )


# Built once (every registration runs it): building a SELECT costs more CPU than running it.
_CONFIRMED_OVERLAPS = _confirmed_overlaps()


async def confirmed_overlaps(session: db.Reader, *, user_id: int, slug: str) -> list[str] | None:
    """Titles of the user's confirmed, not cancelled events that overlap the published event ``slug``, soonest
    first (an event that ends when the other starts does not overlap); None when no published event has that
    slug. One statement: a registration that is not confirmed yet needs nothing else before its transaction."""
    rows = (await session.execute(_CONFIRMED_OVERLAPS, {"user_id": user_id, "slug": slug})).all()
    if not rows:
        return None
    return [row.title for row in rows if row.title is not None]
