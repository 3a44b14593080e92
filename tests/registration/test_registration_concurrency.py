"""Under concurrency no seat is oversold, nobody holds two registrations, and the waitlist keeps order.

Each test has a control: with the event lock switched off and a pause between the seat check and the
write, the same load does oversell, which shows the test can fail.
"""

import asyncio
from collections import Counter

import pytest
from sqlalchemy import insert, select

from events import errors
from events.models import Registration, RegistrationStatus, User, utcnow
from events.registration import leaving, locks
from events.registration import services as registration_services
from hyperion import db
from tests import factories

CAPACITY = 50
STUDENTS = 300


async def _students(count: int) -> list[int]:
    rows = [{"email": f"rush{n}@etu.test", "display_name": f"Rush {n}", "password_hash": "!",
             "created_at": utcnow()} for n in range(count)]
    # raw: 300 accounts in one statement, so the set-up does not dwarf the rush being measured.
    async with db.write_session() as session, session.begin():
        result = await session.execute(insert(User).returning(User.id, sort_by_parameter_order=True), rows)
        return list(result.scalars())


async def _rush(event_id: int, user_ids: list[int]) -> list[object]:
    async def one(user_id: int):
        async with db.write_session() as session:
            try:
                return await registration_services.registration_create(session, event_id=event_id, user_id=user_id)
            except errors.DomainError as error:
                return error

    return await asyncio.gather(*(one(user_id) for user_id in user_ids))


@pytest.mark.postgres_only
async def test_hundreds_of_concurrent_registrations_fill_exactly_the_capacity(session):
    event_id = await factories.event(association_id=await factories.association(), capacity=CAPACITY)
    user_ids = await _students(STUDENTS)
    # Each student clicks twice: double submits must not create a second registration.
    outcomes = await _rush(event_id, user_ids + user_ids[:100])

    rows = (await session.execute(
        select(Registration.user_id, Registration.status, Registration.queued_at, Registration.id)
        .where(Registration.event_id == event_id))).all()
    counts = Counter(row.status for row in rows)
    assert counts[RegistrationStatus.CONFIRMED] == CAPACITY
    assert counts[RegistrationStatus.WAITLISTED] == STUDENTS - CAPACITY
    assert len({row.user_id for row in rows}) == len(rows) == STUDENTS
    assert sum(isinstance(outcome, registration_services.AlreadyRegistered) for outcome in outcomes) == 100
    # Waitlist positions handed out are exactly 1..250, each once.
    positions = sorted(o.waitlist_position for o in outcomes if isinstance(o, registration_services.RegistrationOutcome)
                       and o.status == RegistrationStatus.WAITLISTED)
    assert positions == list(range(1, STUDENTS - CAPACITY + 1))
    # Everyone confirmed arrived before everyone waitlisted.
    confirmed_last = max((r.queued_at, r.id) for r in rows if r.status == RegistrationStatus.CONFIRMED)
    waitlisted_first = min((r.queued_at, r.id) for r in rows if r.status == RegistrationStatus.WAITLISTED)
    assert confirmed_last < waitlisted_first


@pytest.mark.postgres_only
async def test_control_without_the_lock_the_same_rush_oversells(session, monkeypatch):
    monkeypatch.setattr(locks, "UNSAFE_RACE_WINDOW_SECONDS", 0.05)
    event_id = await factories.event(association_id=await factories.association(), capacity=CAPACITY)
    await _rush(event_id, await _students(120))
    confirmed = (await session.execute(select(Registration.id).where(
        Registration.event_id == event_id, Registration.status == RegistrationStatus.CONFIRMED))).all()
    assert len(confirmed) > CAPACITY  # the lock is what prevents this


async def test_concurrent_leaves_promote_in_waitlist_order(session):
    event_id = await factories.event(association_id=await factories.association(), capacity=10)
    user_ids = await _students(30)
    for user_id in user_ids:  # sequential: arrival order is the list order
        async with db.write_session() as write:
            await registration_services.registration_create(write, event_id=event_id, user_id=user_id)

    async def leave(user_id: int):
        async with db.write_session() as write:
            return await leaving.registration_leave(write, event_id=event_id, user_id=user_id)

    await asyncio.gather(*(leave(user_id) for user_id in user_ids[:5]))
    confirmed = set((await session.execute(select(Registration.user_id).where(
        Registration.event_id == event_id, Registration.status == RegistrationStatus.CONFIRMED))).scalars())
    assert confirmed == set(user_ids[5:15])  # the first five of the line took the five freed seats


async def test_concurrent_registrations_on_sqlite_or_postgres_never_oversell(session):
    event_id = await factories.event(association_id=await factories.association(), capacity=5)
    await _rush(event_id, await _students(40))
    counts = Counter((await session.execute(select(Registration.status).where(
        Registration.event_id == event_id))).scalars())
    assert counts == {RegistrationStatus.CONFIRMED: 5, RegistrationStatus.WAITLISTED: 35}
