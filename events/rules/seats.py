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
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, ScalarSelect, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass

from events.models import (
    Event,
    Registration,
    RegistrationStatus,
)
from hyperion import db

# The statuses that hold a seat: confirmed, and offered until the offer is accepted or expires.
SEAT_HOLDERS = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED)

# A live registration: a seat held or offered, a place in line, or an entry in a draw (not left, not lapsed).
# Its student is one of the event's registrants: they hear of its changes, and may change their answers.
LIVE_STATUSES = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED, RegistrationStatus.WAITLISTED,
                 RegistrationStatus.ENTERED)

# The two kinds of seat (``SeatState.seat_for``): one held for the event's priority groups, or any other.
RESERVED, OPEN = "reserved", "open"


class Reserving(Protocol):
    """What the reserve's rule reads of an event."""

    @property
    def reserved_seats(self) -> int | None: ...

    @property
    def reserved_until(self) -> datetime | None: ...


def reserve_holds(event: Reserving, now: datetime) -> bool:
    """Some seats are held for the event's priority groups now: until ``reserved_until``, when they join the
    others (one pool)."""
    return bool(event.reserved_seats) and event.reserved_until is not None and now < event.reserved_until


def hold_fits(held: int | None, capacity: int | None) -> bool:
    """Seats held for the groups are no more than the event's seats (an unlimited event holds what it likes)."""
    return not held or capacity is None or held <= capacity


def hold_ended_between(after: Any, until: Any) -> ColumnElement[bool]:
    """SQL: the event in the enclosing query stopped holding seats for its groups in (after, until]."""
    return and_(Event.reserved_until > after, Event.reserved_until <= until)


def hold_ends_after(moment: Any) -> ColumnElement[bool]:
    """SQL: the event in the enclosing query holds seats for its groups until after ``moment``."""
    return and_(Event.reserved_until > moment)


def held_seats(event: Reserving, reserve_taken: int, now: datetime) -> int:
    """How many seats held for the groups are still free now (0 once the reserve no longer holds)."""
    return max((event.reserved_seats or 0) - reserve_taken, 0) if reserve_holds(event, now) else 0


async def taken_count(session: AsyncSession, *, event_id: int) -> int:
    return (await session.execute(select(count_of(SEAT_HOLDERS, event_id=event_id)))).scalar_one()


async def seat_state(session: AsyncSession, *, event: Event, now: datetime) -> SeatState:
    """The seats of ``event`` as this transaction sees them (under the event's lock in a service)."""
    row = (await session.execute(select(count_of(SEAT_HOLDERS, event_id=event.id),
                                        count_of(RegistrationStatus.WAITLISTED, event_id=event.id),
                                        count_of(SEAT_HOLDERS, event_id=event.id, from_reserve=True)))).one()
    return SeatState(event.capacity, row[0], row[1], held_seats(event, row[2], now))


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
    held: int = 0  # seats still free that are held for the priority groups (while the event's reserve holds)

    @property
    def unlimited(self) -> bool:
        return self.capacity is None

    @property
    def seats_left(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.taken, 0)

    @property
    def fill_rate(self) -> float | None:
        """The share of the seats taken: 1.0 when full (a capacity of 0 is full), above when overbooked;
        None without a limit."""
        if self.capacity is None:
            return None
        return self.taken / self.capacity if self.capacity else 1.0

    @property
    def is_full(self) -> bool:
        return self.capacity is not None and self.taken >= self.capacity

    @property
    def overbooked(self) -> bool:
        """More seats taken than there are: a capacity may never be set below the seats taken."""
        return self.capacity is not None and self.taken > self.capacity

    def full_for(self, *, in_group: bool) -> bool:
        """No seat for this student: none left, or only seats held for the priority groups and they are in
        none of them."""
        if in_group or not self.held:
            return self.is_full
        return self.capacity is not None and self.taken + self.held >= self.capacity

    def seat_for(self, *, in_group: bool) -> str | None:
        """Which seat a student gets now: ``RESERVED`` (one held for the groups, which a student of a group
        takes first), ``OPEN``, or None (full for them: the waitlist)."""
        if self.full_for(in_group=in_group):
            return None
        return RESERVED if in_group and self.held > 0 else OPEN

    def taking(self, seat: str | None) -> SeatState:
        """The seats once a student took ``seat`` (``seat_for``'s answer; None: they joined the line)."""
        if seat is None:
            return SeatState(self.capacity, self.taken, self.waitlisted + 1, self.held)
        return SeatState(self.capacity, self.taken + 1, self.waitlisted, self.held - (seat == RESERVED))

    @property
    def next_waitlist_position(self) -> int:
        """The place in line of whoever joins it now: the end of the line."""
        return self.waitlisted + 1


def count_of(status: RegistrationStatus | tuple[RegistrationStatus, ...], *,
             event_id: Any = Event.id, from_reserve: bool | None = None,
             where: ColumnElement[bool] | None = None) -> ScalarSelect[int]:
    """Count of an event's registrations in ``status`` (or any of several; seats are counted, never stored):
    correlated with the enclosing query's events by default, or of ``event_id`` (a value or a bound parameter).
    ``from_reserve``: only those whose seat was (True) or was not (False) one held for the priority groups.
    ``where``: only those meeting another rule's condition as well (checked in, a no-show: rules/attendance)."""
    in_status = (db.constant_in(Registration.status, status) if isinstance(status, tuple)
                 else Registration.status == status)
    if from_reserve is not None:
        in_status = in_status & (Registration.from_reserve.is_(from_reserve))
    if where is not None:
        in_status = in_status & where
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


# The order the line is served in: who joined first, then the registration's id (its commit order) for
# registrations that share a moment. waitlist_position_of below counts places in this same order.
LINE_ORDER = (Registration.queued_at, Registration.id)


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
