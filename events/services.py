"""Writes: every change to registrations, accounts and events goes through a function here.

A service owns its transaction: it begins, takes its lock, checks the rule, writes and commits, so the lock
covers the commit and a view, a command and a test get the same unit of work. Callers get a typed result
or a ``DomainError``; database constraint violations become the same domain errors.

Seats: every path that changes seats (register, leave, promotion, and later staff changes) first locks the
event row (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the write transaction's ``BEGIN IMMEDIATE``
already serialises writers) and counts the confirmed rows under that lock. No stored counter can drift.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.translation import gettext_lazy as _
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events import auth, live, notifications
from events.audit import audit_log
from events.models import (
    Event,
    EventStatus,
    LoginFailure,
    Registration,
    RegistrationStatus,
    User,
    utcnow,
)
from events.queries import waitlist_position_of


class DomainError(Exception):
    """A rule said no. ``message`` is for the person who asked (translated)."""

    message = _("This action is not possible.")

    def __init__(self, message: str | None = None) -> None:
        super().__init__(str(message or self.message))
        if message is not None:
            self.message = message


class EventNotFound(DomainError):
    message = _("This event does not exist.")


class RegistrationClosed(DomainError):
    message = _("Registration is not open for this event.")


class AlreadyRegistered(DomainError):
    message = _("You are already registered for this event.")


class NotRegistered(DomainError):
    message = _("You are not registered for this event.")


class UnregistrationClosed(DomainError):
    message = _("It is too late to leave this event.")


class EmailTaken(DomainError):
    message = _("An account already exists with this e-mail address.")


class LoginThrottled(DomainError):
    message = _("Too many failed log-in attempts. Wait a few minutes and try again.")


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
# fail). Off in production code paths: only tests/test_registration_concurrency.py turns it on.
_UNSAFE_RACE_WINDOW_SECONDS: float = 0.0


_EVENT = select(Event).where(Event.id == bindparam("event_id"))
_EVENT_LOCKED = _EVENT.with_for_update()  # built once: every registration and cancellation runs it


async def _event_locked(session: AsyncSession, event_id: int) -> Event:
    statement = _EVENT if _UNSAFE_RACE_WINDOW_SECONDS else _EVENT_LOCKED
    event = (await session.execute(statement, {"event_id": event_id})).scalar_one_or_none()
    if event is None:
        raise EventNotFound
    return event


async def confirmed_count(session: AsyncSession, *, event_id: int) -> int:
    return (await session.execute(
        select(func.count(Registration.id)).where(
            Registration.event_id == event_id, Registration.status == RegistrationStatus.CONFIRMED)
    )).scalar_one()


async def waitlist_position(session: AsyncSession, *, registration_id: int) -> int | None:
    """1 for the first in line; None if the registration is not waitlisted."""
    row = (await session.execute(
        select(Registration.status, waitlist_position_of(Registration)).where(Registration.id == registration_id)
    )).one_or_none()
    if row is None or row[0] != RegistrationStatus.WAITLISTED:
        return None
    return row[1]


def registration_is_open(event: Event, now: datetime) -> bool:
    """The one rule for "may register now": approved, window open, not started."""
    if event.status != EventStatus.APPROVED:
        return False
    if event.registration_opens_at is not None and now < event.registration_opens_at:
        return False
    closes_at = event.registration_closes_at or event.starts_at
    return now < closes_at


def unregistration_is_open(event: Event, now: datetime) -> bool:
    return now < (event.unregistration_closes_at or event.starts_at)


async def registration_create(
    session: AsyncSession, *, event_id: int, user_id: int, now: datetime | None = None
) -> RegistrationOutcome:
    """Register ``user_id``: confirmed while seats remain, waitlisted (at the end of the line) when full."""
    now = now or utcnow()
    try:
        async with session.begin():
            event = await _event_locked(session, event_id)
            if not registration_is_open(event, now):
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
    _registrations_of_event(func.count(Registration.id), status=RegistrationStatus.CONFIRMED)
    .scalar_subquery().label("confirmed"),
    _registrations_of_event(func.count(Registration.id), status=RegistrationStatus.WAITLISTED)
    .scalar_subquery().label("waitlisted"),
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
    confirmed = state.confirmed
    if _UNSAFE_RACE_WINDOW_SECONDS:
        await asyncio.sleep(_UNSAFE_RACE_WINDOW_SECONDS)
    full = event.capacity is not None and confirmed >= event.capacity
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
    position = state.waitlisted + 1 if full else None
    await notifications.registration_messages(session, event=event, user_id=user_id, status=status,
                                              waitlist_position=position)
    await live.seats_changed(session, event_id=event.id)
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
        if not unregistration_is_open(event, now):
            raise UnregistrationClosed
        previous = registration.status
        registration.status = RegistrationStatus.CANCELLED
        await session.flush()
        await notifications.reminders_drop(session, event_id=event.id, user_id=user_id)
        await notifications.notify(session, kind="registration.left", recipient_ids=[user_id], event_id=event.id)
        promoted = await waitlist_promote_locked(session, event) if previous == RegistrationStatus.CONFIRMED else ()
        await live.seats_changed(session, event_id=event.id)
    return LeaveOutcome(previous_status=previous, promoted_user_ids=promoted)


async def waitlist_promote_locked(session: AsyncSession, event: Event) -> tuple[int, ...]:
    """Fill free seats from the waitlist in arrival order. The caller holds the event's lock."""
    if event.status != EventStatus.APPROVED:
        return ()
    if event.capacity is None:
        free = None
    else:
        free = event.capacity - await confirmed_count(session, event_id=event.id)
        if free <= 0:
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
        await notifications.promotion_messages(session, event=event, user_ids=promoted)
        await live.seats_changed(session, event_id=event.id)
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


# Accounts.

def normalize_email(email: str) -> str:
    return email.strip().lower()


async def user_create(
    session: AsyncSession, *, email: str, display_name: str, password_hash: str, promo: int | None = None,
    is_staff: bool = False, language: str = "fr",
) -> int:
    try:
        async with session.begin():
            return (await session.execute(insert(User).returning(User.id), {
                "email": normalize_email(email), "display_name": display_name.strip(),
                "password_hash": password_hash, "promo": promo, "is_staff": is_staff, "is_active": True,
                "language": language, "created_at": utcnow(),
            })).scalar_one()
    except IntegrityError as exc:
        raise EmailTaken from exc


async def user_password_set(session: AsyncSession, *, user_id: int, password_hash: str) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


async def user_language_set(session: AsyncSession, *, user_id: int, language: str) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(language=language))


async def user_email_opt_outs_set(session: AsyncSession, *, user_id: int, opt_outs: list[str]) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(email_opt_outs=sorted(set(opt_outs))))


@dataclass(frozen=True, slots=True)
class FeedAddress:
    token: str
    replaced: bool  # an earlier address existed, and no longer works


async def feed_token_regenerate(session: AsyncSession, *, user_id: int) -> FeedAddress:
    """A new secret for the personal calendar feed; the old URL, if any, stops working at once. Only its hash is
    stored: the caller shows ``token`` to its owner now or never."""
    token = secrets.token_urlsafe(24)
    async with session.begin():
        previous = (await session.execute(
            select(User.feed_token_hash).where(User.id == user_id))).scalar_one_or_none()
        await session.execute(update(User).where(User.id == user_id).values(
            feed_token_hash=auth.feed_token_hash(token)))
    return FeedAddress(token, replaced=previous is not None)


async def feed_token_revoke(session: AsyncSession, *, user_id: int) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(feed_token_hash=None))


LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_MAX_FAILURES_PER_ACCOUNT = 5
LOGIN_MAX_FAILURES_PER_ADDRESS = 20


async def login_throttle_check(session: AsyncSession, *, email: str, address: str) -> None:
    """Refuse a log-in attempt while this account or this address has failed too often recently.

    The window slides: the real owner can log in again a few minutes later (never locked out for ever).
    """
    since = utcnow() - LOGIN_WINDOW
    async with session.begin():
        by_account = (await session.execute(select(func.count(LoginFailure.id)).where(
            LoginFailure.email == normalize_email(email), LoginFailure.created_at > since))).scalar_one()
        by_address = (await session.execute(select(func.count(LoginFailure.id)).where(
            LoginFailure.address == address, LoginFailure.created_at > since))).scalar_one()
    if by_account >= LOGIN_MAX_FAILURES_PER_ACCOUNT or by_address >= LOGIN_MAX_FAILURES_PER_ADDRESS:
        raise LoginThrottled


async def login_failure_record(session: AsyncSession, *, email: str, address: str) -> None:
    """Its own short transaction: the refusal must not roll it back."""
    now = utcnow()
    async with session.begin():
        await session.execute(insert(LoginFailure), {
            "email": normalize_email(email)[:254], "address": address[:45], "created_at": now})
        await session.execute(delete(LoginFailure).where(LoginFailure.created_at < now - LOGIN_WINDOW * 4))


async def login_failures_clear(session: AsyncSession, *, email: str) -> None:
    async with session.begin():
        await session.execute(delete(LoginFailure).where(LoginFailure.email == normalize_email(email)))
