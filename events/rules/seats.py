"""Seats: the one owner of "how many taken, how many waiting, who is where in line".

A seat is taken by a confirmed registration or by an offer the student has not answered yet (``SEAT_HOLDERS``):
an offered seat is held for its student until the offer expires, so nobody else may take it meanwhile.

The SQL expressions here are used by every query that shows or decides seats (lists, event page, My events,
feeds, staff pages, the live counter, the services under the event's lock), and ``SeatState`` by everything
that says "N seats left", "full" or "the capacity cannot go below N" (pages, the live counter's news, the
services placing and promoting students).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass

from events.models import (
    Event,
    Registration,
    RegistrationStatus,
)

# The statuses that hold a seat: confirmed, and offered until the offer is accepted or expires.
SEAT_HOLDERS = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED)


async def taken_count(session: AsyncSession, *, event_id: int) -> int:
    return (await session.execute(select(count_of(SEAT_HOLDERS, event_id=event_id)))).scalar_one()


async def seat_state(session: AsyncSession, *, event: Event) -> SeatState:
    """The seats of ``event`` as this transaction sees them (under the event's lock in a service)."""
    row = (await session.execute(select(count_of(SEAT_HOLDERS, event_id=event.id),
                                        count_of(RegistrationStatus.WAITLISTED, event_id=event.id)))).one()
    return SeatState(event.capacity, row[0], row[1])


async def waitlist_position(session: AsyncSession, *, registration_id: int) -> int | None:
    """1 for the first in line; None if the registration is not waitlisted."""
    row = (await session.execute(
        select(Registration.status, waitlist_position_of(Registration)).where(Registration.id == registration_id)
    )).one_or_none()
    if row is None or row[0] != RegistrationStatus.WAITLISTED:
        return None
    return row[1]


@dataclass(frozen=True, slots=True)
class SeatState:
    """Seats of one event: the one place that says how many are left and whether it is full."""

    capacity: int | None
    taken: int  # confirmed, or offered and not answered yet
    waitlisted: int = 0

    @property
    def unlimited(self) -> bool:
        return self.capacity is None

    @property
    def seats_left(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.taken, 0)

    @property
    def is_full(self) -> bool:
        return self.capacity is not None and self.taken >= self.capacity

    @property
    def overbooked(self) -> bool:
        """More seats taken than there are: a capacity may never be set below the seats taken."""
        return self.capacity is not None and self.taken > self.capacity

    @property
    def next_waitlist_position(self) -> int:
        """The place in line of whoever joins it now: the end of the line."""
        return self.waitlisted + 1


def count_of(status: RegistrationStatus | tuple[RegistrationStatus, ...], *,
             event_id: Any = Event.id) -> ScalarSelect[int]:
    """Count of an event's registrations in ``status`` (or any of several; seats are counted, never stored):
    correlated with the enclosing query's events by default, or of ``event_id`` (a value or a bound parameter)."""
    in_status = Registration.status.in_(status) if isinstance(status, tuple) else Registration.status == status
    return (
        select(func.count(Registration.id))
        .where(Registration.event_id == event_id, in_status)
        .correlate(Event)
        .scalar_subquery()
    )


TAKEN_COUNT = count_of(SEAT_HOLDERS).label("taken")


WAITLISTED_COUNT = count_of(RegistrationStatus.WAITLISTED).label("waitlisted")


def has_seat_left() -> ColumnElement[bool]:
    """SQL: the event in the enclosing query has a free seat (no capacity, or fewer taken than seats)."""
    return or_(Event.capacity.is_(None), count_of(SEAT_HOLDERS) < Event.capacity)


def waitlist_position_of(
        registration: type[Registration] | AliasedClass[Registration] = Registration) -> ScalarSelect[int]:
    """The one rule for a waitlist position, as a correlated SQL expression: 1 + the waitlisted
    registrations of the same event queued before ``registration`` (by queued_at, then id)."""
    other = aliased(Registration)
    return (
        select(func.count(other.id) + 1)
        .where(
            other.event_id == registration.event_id,
            other.status == RegistrationStatus.WAITLISTED,
            or_(other.queued_at < registration.queued_at,
                (other.queued_at == registration.queued_at) & (other.id < registration.id)),
        )
        .correlate(registration)
        .scalar_subquery()
    )
