"""Waitlist offers: a promotion the student accepts in time, or that passes to the next in line.

For an event whose promotions are offers (``Event.offer_hours``; the rule is ``events.rules.offers``), a seat
that frees up is offered to the first in line (``promotions.waitlist_promote_locked``) and held for them until
the offer expires. They accept it on the event's page (``offer_accept``: confirmed, reminded the day before)
or decline it (leaving, which is always allowed for an offer). An offer not accepted in time expires and its
seat is offered to the next in line, both students told by e-mail: whoever next holds the event's lock for
its seats does it (a student leaving, staff, ``manage.py promotewaitlist``), and each web process's sweeper
(``Sweeper``, a lifespan hook) wakes at the next deadline to do it for events nobody touches.

The sweeper also frees the seats an event held for its priority groups when that hold ends
(``Event.reserved_until``): the students waiting outside the groups get them, first in line first.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from events import errors, outbox
from events.live import broadcast
from events.models import Event, Registration, RegistrationStatus, utcnow
from events.registration import locks, promotions, services
from events.rules import offers, seats, visibility
from hyperion import db, hooks

logger = logging.getLogger("hyperion.offers")


async def offer_accept(session: AsyncSession, *, event_id: int, user_id: int, now: datetime | None = None) -> None:
    """The student takes the seat offered to them: confirmed. ``OfferExpired`` when its deadline has passed
    (the offer then expires and its seat goes on, committed, before the error reaches the caller),
    ``NoOfferPending`` when nothing is offered to them."""
    now = now or utcnow()
    expired = False
    async with session.begin():
        event = await locks.event_locked(session, event_id)
        registration = (await session.execute(
            select(Registration).where(Registration.event_id == event_id, Registration.user_id == user_id)
        )).scalar_one_or_none()
        if registration is not None and registration.status == RegistrationStatus.EXPIRED:
            raise services.OfferExpired
        if registration is None or registration.status != RegistrationStatus.OFFERED:
            raise services.NoOfferPending
        if not visibility.goes_ahead(event.status):
            raise services.RegistrationClosed
        if offers.offer_is_open(registration.offer_expires_at, now):
            registration.status = RegistrationStatus.CONFIRMED
            registration.offer_expires_at = None
            await session.flush()
            await outbox.offer_accepted_messages(session, event=event, user_id=user_id)
            await broadcast.seats_changed(session, event_id=event.id, user_id=user_id)
        else:  # too late: it expires now, and its seat goes on (committed with this transaction)
            await promotions.waitlist_promote_locked(session, event, now=now)
            expired = True
    if expired:
        raise services.OfferExpired


# The events with an offer past its deadline, and the next deadline of all (one statement each, for the
# sweeper's round).
_EVENTS_WITH_OFFERS_DUE = (
    select(Registration.event_id).distinct()
    .join(Event, Event.id == Registration.event_id)
    .where(Registration.status == RegistrationStatus.OFFERED, visibility.going_ahead(),
           Registration.offer_expires_at <= bindparam("now", type_=Registration.offer_expires_at.type)))
_NEXT_DEADLINE = (select(func.min(Registration.offer_expires_at))
                  .join(Event, Event.id == Registration.event_id)
                  .where(Registration.status == RegistrationStatus.OFFERED, visibility.going_ahead()))
# Events whose hold on seats ended with someone waiting and a seat free (it frees as soon as it is filled),
# and the next end of a hold.
_EVENTS_HOLD_ENDED = (
    select(Event.id)
    .where(visibility.going_ahead(), seats.hold_ended_between(bindparam("recent", type_=Event.reserved_until.type),
                                                              bindparam("now", type_=Event.reserved_until.type)),
           seats.has_seat_left(),
           select(Registration.id).where(Registration.event_id == Event.id,
                                         Registration.status == RegistrationStatus.WAITLISTED).exists()))
_NEXT_HOLD_END = select(func.min(Event.reserved_until)).where(
    visibility.going_ahead(), seats.hold_ends_after(bindparam("now", type_=Event.reserved_until.type)))


async def expire_due(*, now: datetime | None = None) -> tuple[int, datetime | None]:
    """Pass on every offer whose deadline has passed (each event in its own transaction, under its lock: one
    handled meanwhile by another process is a no-op here); the number of events handled, and the next
    deadline (None: no offer waits)."""
    now = now or utcnow()
    async with db.read_connection() as connection:
        due = set((await connection.execute(_EVENTS_WITH_OFFERS_DUE, {"now": now})).scalars().all())
        # (A hold that ended more than a week ago had its seats given long since: not looked at again.)
        due |= set((await connection.execute(_EVENTS_HOLD_ENDED, {"now": now, "recent": now - timedelta(days=7)}
                                             )).scalars().all())
    for event_id in sorted(due):
        async with db.write_session() as session:
            try:
                await services.waitlist_promote(session, event_id=event_id)
            except errors.EventNotFound:  # deleted meanwhile
                continue
    async with db.read_connection() as connection:
        deadlines = [(await connection.execute(_NEXT_DEADLINE)).scalar_one_or_none(),
                     (await connection.execute(_NEXT_HOLD_END, {"now": now})).scalar_one_or_none()]
    return len(due), min((moment for moment in deadlines if moment is not None), default=None)


class Sweeper(hooks.DueTask):
    """Each web process passes on expired offers at their deadline (a lifespan hook, settings.LIFESPAN_HOOKS,
    on unless ``OFFER_SWEEPER_IN_WEB`` is off; it looks at least every ``OFFER_SWEEPER_INTERVAL`` seconds for
    offers made meanwhile by another process). Several processes may sweep the same event: the event's
    lock makes the second one find nothing due."""

    name = "offer-sweeper"

    def enabled(self) -> bool:
        return settings.OFFER_SWEEPER_IN_WEB

    def interval(self) -> float:
        return settings.OFFER_SWEEPER_INTERVAL

    async def do_due(self) -> datetime | None:
        handled, next_deadline = await expire_due()
        if handled:
            logger.info("expired offers passed on in %d event(s)", handled)
        return next_deadline


sweeper = Sweeper()
