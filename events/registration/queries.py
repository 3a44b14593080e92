"""Reads of the registration feature: My events, and the confirmed registrations that overlap a new one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Subquery, and_, bindparam, select
from sqlalchemy.orm import aliased

from events.catalog.queries import EVENT_ROW_COLUMNS, EventRow, event_row
from events.models import (
    Association,
    Event,
    Registration,
    RegistrationStatus,
)
from events.rules import attendance, visibility
from events.rules.seats import waitlist_position_of
from hyperion import db


@dataclass(frozen=True, slots=True)
class MyEventRow:
    event: EventRow
    status: RegistrationStatus
    waitlist_position: int | None
    registration_id: int = 0
    offer_expires_at: datetime | None = None  # a seat offered: until when it may be accepted (or when it lapsed)


_MY_REGISTRATIONS = (
    select(*EVENT_ROW_COLUMNS, Registration.id.label("my_id"), Registration.status.label("my_status"),
           waitlist_position_of(Registration).label("my_position"),
           Registration.offer_expires_at.label("my_offer_expires_at"))
    .join(Association, Association.id == Event.association_id)
    .join(Registration, Registration.event_id == Event.id)
    .where(Registration.user_id == bindparam("user_id"))
    .order_by(Event.starts_at, Event.id)
)


async def my_registrations(session: db.Reader, *, user_id: int) -> list[MyEventRow]:
    """Every event the user registered for (any state), soonest first."""
    return [
        MyEventRow(event_row(row), row.my_status,
                   row.my_position if row.my_status == RegistrationStatus.WAITLISTED else None, row.my_id,
                   row.my_offer_expires_at)
        for row in await session.execute(_MY_REGISTRATIONS, {"user_id": user_id})
    ]


# The overlap rule in SQL, in two parts (``memory.kept_overlaps`` is the same rule in Python, and the tests
# hold it to this one): the students' confirmed events going ahead, and which of them overlap a target event.
def confirmed_going_ahead(user_id_among: ColumnElement[bool], name: str) -> Subquery:
    """The confirmed events going ahead of the users ``user_id_among`` selects: user_id, id, title, starts_at,
    ends_at."""
    return (select(Registration.user_id, Event.id, Event.title, Event.starts_at, Event.ends_at)
            .join(Registration, Registration.event_id == Event.id)
            .where(user_id_among, Registration.status == RegistrationStatus.CONFIRMED, visibility.going_ahead())
            .subquery(name))


def overlapping(mine: Subquery, *, target_id, starts_at, ends_at) -> ColumnElement[bool]:
    """``mine``'s event is another event than the target, and their times overlap (an event that ends when the
    other starts does not). The target is columns of an outer query or bound parameters."""
    return and_(mine.c.id != target_id, mine.c.starts_at < ends_at, mine.c.ends_at > starts_at)


def _confirmed_overlaps():
    """The published event of the slug (its id), with the title of each of the user's confirmed events going
    ahead that overlaps it (one row per overlap, soonest first; one row with no title when none does)."""
    target = aliased(Event, name="target")
    mine = confirmed_going_ahead(Registration.user_id == bindparam("user_id"), "mine")
    return (
        select(target.id, mine.c.title)
        .select_from(target)
        .outerjoin(mine, overlapping(mine, target_id=target.id, starts_at=target.starts_at, ends_at=target.ends_at))
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


# The latest no-show (events/rules/attendance.py) of each of some students at an association's events that
# ended after a moment: one statement (a registration batch, or one student's event page).
_NO_SHOWS = (
    select(Registration.user_id, Event.title, Event.ends_at)
    .join(Event, Event.id == Registration.event_id)
    .where(Registration.user_id.in_(bindparam("user_ids", expanding=True)),
           Event.association_id == bindparam("association_id"),
           Event.ends_at > bindparam("since", type_=Event.ends_at.type), attendance.no_show())
    .order_by(Event.ends_at)
)


async def latest_no_shows(session: db.Reader, *, user_ids: list[int], association_id: int, since: datetime,
                          now: datetime) -> dict[int, attendance.NoShow]:
    """Each student's latest no-show at the association's events that ended after ``since`` (none: absent)."""
    rows = await session.execute(_NO_SHOWS, {"user_ids": user_ids, "association_id": association_id,
                                             "since": since, "now": now})
    return {row.user_id: attendance.NoShow(row.title, row.ends_at) for row in rows}  # the latest wins
