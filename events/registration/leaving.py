"""Leaving: a student leaving an event (or declining the seat offered to them), and an account closing
(``registration_release``: its registrations go whatever the last moment to leave); the cancellation both
share (``_cancel_locked``), whose freed seat goes to the first in line (``promotions``).

Same habits as ``services``: each function owns its transaction and takes the event's lock (``locks``)
before it reads the registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext_lazy as _
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.errors import DomainError
from events.live import broadcast
from events.models import Event, Registration, RegistrationStatus, utcnow
from events.registration import locks, promotions
from events.rules import window
from events.rules.seats import SEAT_HOLDERS


class NotRegistered(DomainError):
    message = _("You are not registered for this event.")


class UnregistrationClosed(DomainError):
    message = _("It is too late to leave this event.")


@dataclass(frozen=True, slots=True)
class LeaveOutcome:
    previous_status: RegistrationStatus
    promoted_user_ids: tuple[int, ...] = ()


async def registration_leave(
    session: AsyncSession, *, event_id: int, user_id: int, now: datetime | None = None
) -> LeaveOutcome:
    """The student leaves (or declines the seat offered to them, which is always allowed: it is not theirs
    yet): a freed seat goes to the first in line."""
    now = now or utcnow()
    async with session.begin():
        event, registration = await _registration_locked(session, event_id, user_id)
        if registration is None:
            raise NotRegistered
        previous = registration.status
        if previous != RegistrationStatus.OFFERED and not window.unregistration_is_open(event, now):
            raise UnregistrationClosed
        if previous != RegistrationStatus.ENTERED:  # an entry came and goes without e-mail: the page says it
            await outbox.notify(session, kind="registration.left", recipient_ids=[user_id], event_id=event.id)
        promoted = await _cancel_locked(session, event, registration, now=now)
    return LeaveOutcome(previous_status=previous, promoted_user_ids=promoted)


async def registration_release(session: AsyncSession, *, event_id: int, user_id: int) -> tuple[int, ...]:
    """The student's account is being closed: their registration for the event is cancelled whatever the
    last moment to leave (nobody is told: the account is going), and a freed seat goes to the first in line.
    The students promoted or offered the seat."""
    async with session.begin():
        event, registration = await _registration_locked(session, event_id, user_id)
        if registration is None:
            return ()
        return await _cancel_locked(session, event, registration, now=utcnow())


async def _registration_locked(session: AsyncSession, event_id: int, user_id: int) -> tuple[Event, Registration | None]:
    """The event under its lock, and the student's registration for it unless they have none (left, or an
    offer expired)."""
    event = await locks.event_locked(session, event_id)
    registration = (await session.execute(
        select(Registration).where(Registration.event_id == event_id, Registration.user_id == user_id)
    )).scalar_one_or_none()
    if registration is None or registration.status in (RegistrationStatus.CANCELLED, RegistrationStatus.EXPIRED):
        return event, None
    return event, registration


async def _cancel_locked(session: AsyncSession, event: Event, registration: Registration, *,
                         now: datetime) -> tuple[int, ...]:
    """The registration is cancelled, its reminder dropped, and a seat it held goes to the first in line
    (the students promoted or offered it). The caller holds the event's lock."""
    previous = registration.status
    registration.status = RegistrationStatus.CANCELLED
    registration.offer_expires_at = None
    await session.flush()
    await outbox.reminders_drop(session, event_id=event.id, user_id=registration.user_id)
    promoted = await promotions.waitlist_promote_locked(session, event, now=now) if previous in SEAT_HOLDERS else ()
    await broadcast.seats_changed(session, event_id=event.id)
    return promoted
