"""Writes of the registration feature: register, leave, and the waitlist's promotions.

A service owns its transaction: it begins, takes its lock, checks the rule, writes and commits, so the lock
covers the commit and a view, a command and a test get the same unit of work. Callers get a typed result
or a ``DomainError``; database constraint violations become the same domain errors.

Seats: every path that changes seats (register, leave, promotion, and later staff changes) first locks the
event row (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the write transaction's ``BEGIN IMMEDIATE``
already serialises writers) and counts the confirmed rows under that lock. No stored counter can drift.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.translation import gettext_lazy as _
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.audit import audit_log
from events.errors import DomainError, EventNotFound
from events.live import broadcast
from events.models import (
    Event,
    Registration,
    RegistrationStatus,
    utcnow,
)
from events.rules import visibility, window
from events.rules.seats import SeatState, count_of, seat_state


class RegistrationClosed(DomainError):
    message = _("Registration is not open for this event.")


class AlreadyRegistered(DomainError):
    message = _("You are already registered for this event.")


class NotRegistered(DomainError):
    message = _("You are not registered for this event.")


class UnregistrationClosed(DomainError):
    message = _("It is too late to leave this event.")


@dataclass(frozen=True, slots=True)
class RegistrationOutcome:
    status: RegistrationStatus
    waitlist_position: int | None = None
    registration_id: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class LeaveOutcome:
    previous_status: RegistrationStatus
    promoted_user_ids: tuple[int, ...] = ()


# Test switch for the control run of the concurrency tests (prove a race test can
# fail). Off in production code paths: only tests/registration/test_registration_concurrency.py turns it on.
_UNSAFE_RACE_WINDOW_SECONDS: float = 0.0


_EVENT = select(Event).where(Event.id == bindparam("event_id"))


_EVENT_LOCKED = _EVENT.with_for_update()  # built once: every registration and cancellation runs it


async def _event_locked(session: AsyncSession, event_id: int) -> Event:
    statement = _EVENT if _UNSAFE_RACE_WINDOW_SECONDS else _EVENT_LOCKED
    event = (await session.execute(statement, {"event_id": event_id})).scalar_one_or_none()
    if event is None:
        raise EventNotFound
    return event


async def registration_create(
    session: AsyncSession, *, event_id: int, user_id: int, now: datetime | None = None
) -> RegistrationOutcome:
    """Register ``user_id``: confirmed while seats remain, waitlisted (at the end of the line) when full."""
    now = now or utcnow()
    try:
        async with session.begin():
            event = await _event_locked(session, event_id)
            if not window.registration_is_open(event, now):
                raise RegistrationClosed
            return await registration_place_locked(session, event=event, user_id=user_id)
    except IntegrityError as exc:  # the unique (event, user) constraint caught a double submit
        raise AlreadyRegistered from exc


def _registrations_of_event(*columns, **conditions):
    return select(*columns).where(Registration.event_id == bindparam("event_id"),
                                  *(getattr(Registration, name) == value for name, value in conditions.items()))


# What placing a registration needs to know, read in one round trip under the event's lock: the seats
# taken, the line's length and its last place, and this student's earlier registration, if any.
_PLACE_STATE = select(
    count_of(RegistrationStatus.CONFIRMED, event_id=bindparam("event_id")).label("confirmed"),
    count_of(RegistrationStatus.WAITLISTED, event_id=bindparam("event_id")).label("waitlisted"),
    _registrations_of_event(func.max(Registration.queued_at)).scalar_subquery().label("last_queued_at"),
    _registrations_of_event(Registration.id, user_id=bindparam("user_id")).scalar_subquery().label("existing_id"),
    _registrations_of_event(Registration.status, user_id=bindparam("user_id"))
    .scalar_subquery().label("existing_status"),
)


async def registration_place_locked(
    session: AsyncSession, *, event: Event, user_id: int
) -> RegistrationOutcome:
    """Give ``user_id`` a seat or a place in line. The caller holds the event's lock and checked the rules
    of its own path (the registration window for students; staff may add at any time)."""
    state = (await session.execute(_PLACE_STATE, {"event_id": event.id, "user_id": user_id})).one()
    if state.existing_id is not None and state.existing_status != RegistrationStatus.CANCELLED:
        raise AlreadyRegistered
    seats = SeatState(event.capacity, state.confirmed, state.waitlisted)
    if _UNSAFE_RACE_WINDOW_SECONDS:
        await asyncio.sleep(_UNSAFE_RACE_WINDOW_SECONDS)
    full = seats.is_full
    status = RegistrationStatus.WAITLISTED if full else RegistrationStatus.CONFIRMED
    # The place in line is taken now, under the lock, not when the request arrived: lock order is the
    # arrival order that counts, and it keeps positions unique. Strictly after the last one even if the
    # clock stepped back, so the line is the order of the lock, and this place is the last.
    queued_at = utcnow()
    if state.last_queued_at is not None and queued_at <= state.last_queued_at:
        queued_at = state.last_queued_at + timedelta(microseconds=1)
    if state.existing_id is not None:  # came back after leaving: joins at the end of the line
        registration_id = state.existing_id
        await session.execute(update(Registration).where(Registration.id == registration_id).values(
            status=status, queued_at=queued_at, checked_in_at=None, updated_at=queued_at))
    else:
        registration_id = (await session.execute(
            insert(Registration).returning(Registration.id),
            {"event_id": event.id, "user_id": user_id, "status": status, "queued_at": queued_at,
             "created_at": queued_at, "updated_at": queued_at},
        )).scalar_one()
    position = seats.next_waitlist_position if full else None
    await outbox.registration_messages(session, event=event, user_id=user_id, status=status,
                                              waitlist_position=position)
    await broadcast.seats_changed(session, event_id=event.id, user_id=user_id)
    return RegistrationOutcome(status=status, waitlist_position=position, registration_id=registration_id)


async def registration_leave(
    session: AsyncSession, *, event_id: int, user_id: int, now: datetime | None = None
) -> LeaveOutcome:
    """The student leaves: a freed seat goes to the first in line."""
    now = now or utcnow()
    async with session.begin():
        event = await _event_locked(session, event_id)
        registration = (await session.execute(
            select(Registration).where(Registration.event_id == event_id, Registration.user_id == user_id)
        )).scalar_one_or_none()
        if registration is None or registration.status == RegistrationStatus.CANCELLED:
            raise NotRegistered
        if not window.unregistration_is_open(event, now):
            raise UnregistrationClosed
        previous = registration.status
        registration.status = RegistrationStatus.CANCELLED
        await session.flush()
        await outbox.reminders_drop(session, event_id=event.id, user_id=user_id)
        await outbox.notify(session, kind="registration.left", recipient_ids=[user_id], event_id=event.id)
        promoted = await waitlist_promote_locked(session, event) if previous == RegistrationStatus.CONFIRMED else ()
        await broadcast.seats_changed(session, event_id=event.id)
    return LeaveOutcome(previous_status=previous, promoted_user_ids=promoted)


async def waitlist_promote_locked(session: AsyncSession, event: Event) -> tuple[int, ...]:
    """Fill free seats from the waitlist in arrival order. The caller holds the event's lock."""
    if not visibility.goes_ahead(event.status):
        return ()
    # No capacity: no seat to count, everyone in line gets in.
    free = None if event.capacity is None else (await seat_state(session, event=event)).seats_left
    if free == 0:
        return ()
    statement = (
        select(Registration.id, Registration.user_id)
        .where(Registration.event_id == event.id, Registration.status == RegistrationStatus.WAITLISTED)
        .order_by(Registration.queued_at, Registration.id)
    )
    if free is not None:
        statement = statement.limit(free)
    chosen = (await session.execute(statement)).all()
    promoted = tuple(row.user_id for row in chosen)
    if chosen:
        await session.execute(
            update(Registration)
            .where(Registration.id.in_([row.id for row in chosen]))
            .values(status=RegistrationStatus.CONFIRMED, updated_at=utcnow())
        )
        await outbox.promotion_messages(session, event=event, user_ids=promoted)
        await broadcast.seats_changed(session, event_id=event.id)
    return promoted


async def waitlist_promote(session: AsyncSession, *, event_id: int) -> tuple[int, ...]:
    """Re-check an event's seats and promote from the waitlist in order (safe to run at any time; the
    operator's ``manage.py promotewaitlist``)."""
    async with session.begin():
        event = await _event_locked(session, event_id)
        promoted = await waitlist_promote_locked(session, event)
        if promoted:
            await audit_log(session, actor_id=None, action="registration.promoted", object_type="event",
                            object_id=event.id, association_id=event.association_id,
                            changes={"promoted_user_ids": [None, list(promoted)]})
        return promoted
