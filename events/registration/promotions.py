"""Who gets a seat that frees up: the waitlist's promotions (a seat confirmed at once, or offered when the
event makes offers, ``rules.offers``), the seats held for an event's priority groups, and the offers that
expired passing their seats on. Each function runs under the event's lock, which its caller holds: a
student leaving (events/registration/leaving.py), staff, the sweeper, ``manage.py promotewaitlist``
(events/registration/services.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.live import broadcast
from events.models import Event, Registration, RegistrationStatus, utcnow
from events.registration import applicants
from events.rules import offers, priority, visibility
from events.rules.seats import LINE_ORDER, RESERVED, seat_state

_OFFERS_DUE = (select(Registration.id, Registration.user_id)
               .where(Registration.event_id == bindparam("event_id"), Registration.status == RegistrationStatus.OFFERED,
                      Registration.offer_expires_at <= bindparam("now", type_=Registration.offer_expires_at.type)))


async def offers_expire_locked(session: AsyncSession, event: Event, *, now: datetime) -> tuple[int, ...]:
    """The event's offers whose deadline has passed expire (each student told), freeing their seats; the
    students whose offer expired. The caller holds the event's lock and fills the seats next."""
    due = (await session.execute(_OFFERS_DUE, {"event_id": event.id, "now": now})).all()
    if not due:
        return ()
    await session.execute(update(Registration).where(Registration.id.in_([row.id for row in due]))
                          .values(status=RegistrationStatus.EXPIRED, updated_at=now))
    expired = tuple(row.user_id for row in due)
    await outbox.notify(session, kind="registration.offer_expired", recipient_ids=list(expired), event_id=event.id)
    return expired


async def waitlist_promote_locked(session: AsyncSession, event: Event, *, now: datetime | None = None
                                  ) -> tuple[int, ...]:
    """Pass on the offers that expired, then fill free seats from the waitlist in arrival order: each
    promotion confirms at once, or is an offer when the event makes them (``rules.offers``). The students
    promoted or offered a seat. The caller holds the event's lock."""
    if not visibility.goes_ahead(event.status):  # a cancelled event's offers stay as they are: nothing to pass on
        return ()
    now = now or utcnow()
    expired = await offers_expire_locked(session, event, now=now)
    # No capacity: no seat to count, everyone in line gets in.
    seats = None if event.capacity is None else await seat_state(session, event=event, now=now)
    free = None if seats is None else seats.seats_left
    if free == 0:
        if expired:
            await broadcast.seats_changed(session, event_id=event.id)
        return ()
    statement = (
        select(Registration.id, Registration.user_id)
        .where(Registration.event_id == event.id, Registration.status == RegistrationStatus.WAITLISTED)
        .order_by(*LINE_ORDER)
    )
    chosen: list[tuple[int, int, bool]] = []  # (registration, student, seat held for the groups)
    if seats is not None and seats.held:
        # Seats are held for the priority groups: the line in order, each taking a seat they may have (the
        # held ones go to the first students of a group in line, the others to the first in line).
        line = (await session.execute(statement)).all()
        students = await applicants.students(session, event, [row.user_id for row in line])
        for row in line:
            seat = seats.seat_for(in_group=bool(priority.groups_of(event, students.get(row.user_id))))
            if seat is not None:
                chosen.append((row.id, row.user_id, seat == RESERVED))
                seats = seats.taking(seat)
            if not seats.seats_left:
                break
    else:
        if free is not None:
            statement = statement.limit(free)
        chosen = [(row.id, row.user_id, False) for row in await session.execute(statement)]
    promoted = tuple(user_id for _id, user_id, _held in chosen)
    if chosen:
        expires_at = offers.offer_expires_at(event, now)
        await session.flush()
        connection = await session.connection()  # a Core executemany (one row per promotion)
        await connection.execute(
            update(Registration)
            .where(Registration.id == bindparam("promoted_id"))
            .values(status=RegistrationStatus.CONFIRMED if expires_at is None else RegistrationStatus.OFFERED,
                    offer_expires_at=expires_at, updated_at=now, from_reserve=bindparam("held")),
            [{"promoted_id": registration_id, "held": held} for registration_id, _user, held in chosen])
        if expires_at is None:
            await outbox.promotion_messages(session, event=event, user_ids=promoted)
        else:
            await outbox.offer_messages(session, event=event, user_ids=promoted, expires_at=expires_at)
    if chosen or expired:
        await broadcast.seats_changed(session, event_id=event.id)
    return promoted
