"""Concurrency invariants as property tests: Hypothesis draws plans of ~50 operations (register, leave,
staff add, capacity change, cancel, a lottery's draw, accepting a seat offered, offers expiring) with small
random delays, and runs each plan concurrently through the real services on PostgreSQL (one event of two
opens by lottery, the other makes its promotions offers and holds a seat for its association's members,
half the students, until the hold ends); after every plan, every invariant of faults/invariants.py must
hold.

The checker itself is tested first: each invariant catches a violation planted in the data, and the
control run (the event lock switched off, a pause between the seat check and the write) does oversell
and is caught. A property test whose checker never fails would prove nothing.

Set-up: Hypothesis runs the ``async def`` test on the suite's session loop (pytest-asyncio 1.5); the test
uses an engine of its own (hyperion.db.engine_create, a pool wide enough for the plan) and truncates the
tables itself before each example, since the suite's clean-up runs once per test, not per example.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from events import errors
from events.models import (
    Association,
    Event,
    EventStatus,
    Membership,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.registration import leaving, locks, offers, promotions
from events.registration import services as registration_services
from events.rules.permissions import Actor
from events.staff import people as staff_people
from events.staff import services as staff_services
from faults.invariants import CHECKS, check_invariants, invariant_report
from hyperion import db
from tests import support

STUDENTS = 10
EVENTS = 2
EXAMPLES = 15


@dataclass(frozen=True)
class Scene:
    event_ids: list[int]
    student_ids: list[int]
    staff: Actor


async def _reset_and_seed(engine, capacities: list[int | None]) -> Scene:
    # raw: each Hypothesis example seeds anew on the test's own engine, in one transaction, with openings and
    # holds already running (the factories write through the suite's engine, one transaction a row).
    await support.truncate_all(engine)
    now = utcnow()
    async with engine.begin() as connection:
        association_id = (await connection.execute(insert(Association).returning(Association.id), {
            "slug": "prop", "name": "Prop", "description": "", "created_at": now})).scalar_one()
        event_ids = []
        for number, capacity in enumerate(capacities):
            starts_at = now + timedelta(days=10, hours=number)
            # The last event opens by lottery, its window open: its registrations are entries until a draw.
            # The others make their promotions offers, to accept within a day, and hold a seat for the members.
            held = {"registration_opens_at": now - timedelta(minutes=1), "members_open_at": now - timedelta(hours=1),
                    "reserved_seats": 1, "reserved_until": now + timedelta(days=1)} if capacity else {}
            lottery = {"registration_opens_at": now - timedelta(minutes=1), "lottery_minutes": 60} \
                if number == len(capacities) - 1 else {"offer_hours": 24, **held}
            event_ids.append((await connection.execute(insert(Event).returning(Event.id), {
                "slug": f"prop-{number}", "title": f"Prop {number}", "association_id": association_id,
                "category": "party", "starts_at": starts_at, "ends_at": starts_at + timedelta(hours=2),
                "capacity": capacity, "status": EventStatus.APPROVED, "created_at": now,
                "updated_at": now, **lottery})).scalar_one())
        users = [{"email": f"p{number}@etu.test", "display_name": f"P{number}", "password_hash": "!",
                  "created_at": now} for number in range(STUDENTS)]
        users.append({"email": "staff@etu.test", "display_name": "Staff", "password_hash": "!", "is_staff": True,
                      "created_at": now})
        user_ids = list((await connection.execute(
            insert(User).returning(User.id, sort_by_parameter_order=True), users)).scalars())
        await connection.execute(insert(Membership), [  # the first half of the students are members
            {"user_id": user_id, "association_id": association_id, "role": Role.MEMBER, "created_at": now}
            for user_id in user_ids[:STUDENTS // 2]])
    return Scene(event_ids, user_ids[:-1], Actor(id=user_ids[-1], is_staff=True))


async def _run(sessions, scene: Scene, operation: tuple) -> str:
    kind, student, event, value, delay_ms = operation
    event_id, user_id = scene.event_ids[event], scene.student_ids[student]
    await asyncio.sleep(delay_ms / 1000)  # simulates arrivals spread in time (drawn by hypothesis), waits for nothing
    async with sessions() as session:
        try:
            if kind == "register":
                await registration_services.registration_create(session, event_id=event_id, user_id=user_id)
            elif kind == "leave":
                await leaving.registration_leave(session, event_id=event_id, user_id=user_id)
            elif kind == "add":
                await staff_people.attendee_add(session, actor=scene.staff, event_id=event_id,
                                                  email=f"p{student}@etu.test")
            elif kind == "remove":
                registration_id = (await session.execute(text(
                    "SELECT id FROM registrations WHERE event_id = :event AND user_id = :user"),
                    {"event": event_id, "user": user_id})).scalar()
                await session.rollback()
                if registration_id is None:
                    return "none"
                await staff_people.attendee_remove(session, actor=scene.staff, event_id=event_id,
                                                     registration_id=registration_id)
            elif kind == "capacity":
                await staff_services.event_update(session, actor=scene.staff, event_id=event_id,
                                                  values={"capacity": value})
            elif kind == "draw":  # staff closing the lottery's window early (none for a first-come event)
                if await registration_services.lottery_draw(session, event_id=event_id, actor_id=scene.staff.id,
                                                            early=True) is None:
                    return "none"
            elif kind == "accept":
                await offers.offer_accept(session, event_id=event_id, user_id=user_id)
            elif kind == "expire":  # raw: time passes every offer's deadline, and the sweeper comes by
                async with session.begin():
                    locked = await locks.event_locked(session, event_id)
                    await session.execute(update(Registration).where(
                        Registration.event_id == event_id, Registration.status == RegistrationStatus.OFFERED)
                        .values(offer_expires_at=utcnow() - timedelta(seconds=1)))
                    await promotions.waitlist_promote_locked(session, locked)
            elif kind == "unhold":  # time passes the end of the hold on seats, and the sweeper comes by
                async with session.begin():
                    locked = await locks.event_locked(session, event_id)
                    if locked.reserved_seats is None:
                        return "none"
                    locked.reserved_until = utcnow() - timedelta(seconds=1)
                    await session.flush()
                    await promotions.waitlist_promote_locked(session, locked)
            elif kind == "cancel":
                await staff_services.event_transition(session, actor=scene.staff, event_id=event_id,
                                                      action="cancel", reason="property test")
        except errors.DomainError as refusal:
            return type(refusal).__name__
    return "ok"


capacities = st.one_of(st.none(), st.integers(min_value=0, max_value=5))
operation = st.tuples(
    st.sampled_from(["register"] * 5 + ["leave"] * 3 + ["add"] * 2
                    + ["remove", "capacity", "capacity", "draw", "accept", "accept", "expire", "unhold"]),
    st.integers(min_value=0, max_value=STUDENTS - 1),
    st.integers(min_value=0, max_value=EVENTS - 1),
    capacities,
    st.integers(min_value=0, max_value=8),  # delay before starting, ms
)
cancel = st.one_of(st.none(), st.tuples(st.just("cancel"), st.just(0), st.integers(0, EVENTS - 1), st.none(),
                                        st.integers(min_value=0, max_value=8)))


@pytest.fixture(scope="module")
async def own_engine(database_url):
    engine = db.engine_create(database_url, pool_size=10, max_overflow=0, pool_timeout=60)
    yield engine
    await engine.dispose()


@pytest.mark.postgres_only
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(start=st.lists(capacities, min_size=EVENTS, max_size=EVENTS),
       plan=st.lists(operation, min_size=45, max_size=55), cancelled=cancel)
async def test_random_concurrent_interleavings_never_break_an_invariant(own_engine, database_url, start, plan,
                                                                        cancelled):
    scene = await _reset_and_seed(own_engine, start)
    sessions = async_sessionmaker(own_engine, expire_on_commit=False, autoflush=False)
    operations = [*plan, *([cancelled] if cancelled else [])]
    outcomes = await asyncio.gather(*(_run(sessions, scene, op) for op in operations), return_exceptions=True)
    crashes = [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    done = sum(outcome == "ok" for outcome in outcomes)
    event(f"operations that changed something: {10 * (done // 10)}-{10 * (done // 10) + 9}")  # statistics
    for refusal in sorted({outcome for outcome in outcomes if isinstance(outcome, str) and outcome != "ok"}):
        event(f"refusal seen: {refusal}")
    assert crashes == [], crashes  # only "ok" or a domain refusal: no deadlock, no leaked IntegrityError
    assert await check_invariants(database_url) == []


# The checker can fail.

@pytest.mark.postgres_only
async def test_control_without_the_lock_the_checker_sees_the_oversell(database_url, monkeypatch):
    monkeypatch.setattr(locks, "UNSAFE_RACE_WINDOW_SECONDS", 0.05)
    engine = db.engine_create(database_url, pool_size=10, max_overflow=0, pool_timeout=60)
    try:
        scene = await _reset_and_seed(engine, [3, 3])
        sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        await asyncio.gather(*(_run(sessions, scene, ("register", student, 0, None, 0))
                               for student in range(STUDENTS)))
    finally:
        await engine.dispose()
    violations = await check_invariants(database_url)
    assert any(violation.startswith("capacity:") for violation in violations), violations


def _sql(*statements: str):
    async def plant(connection, ids: dict[str, int]) -> None:
        for statement in statements:
            await connection.execute(text(statement), ids)

    return plant


async def _queue_waiting_first(connection, ids: dict[str, int]) -> None:
    # raw: a fault planted in the data, which no service would write.
    first = (await connection.execute(select(Registration.queued_at).order_by(Registration.queued_at))).scalar()
    await connection.execute(update(Registration).where(Registration.id == ids["waitlisted"])
                             .values(queued_at=first - timedelta(seconds=1)))


# raw: faults planted in the data, which no service would write: the checker must see each.
PLANTED = {
    "capacity": _sql("UPDATE events SET capacity = 1 WHERE id = :event"),
    "no_free_seat": _sql("UPDATE events SET capacity = 5 WHERE id = :event"),
    "waitlist_order": _queue_waiting_first,
    "outbox_match": _sql("DELETE FROM outbox WHERE id = "
                         "(SELECT min(id) FROM outbox WHERE kind = 'registration.confirmed')"),
    "reminders": _sql("UPDATE outbox SET status = 'dropped' WHERE id = "
                      "(SELECT min(id) FROM outbox WHERE kind = 'event.reminder')"),
    "cancel_messages": _sql("UPDATE events SET status = 'cancelled' WHERE id = :event"),
    "audit_status": _sql("UPDATE events SET status = 'cancelled' WHERE id = :event"),
    "audit_capacity": _sql("UPDATE events SET capacity = 4 WHERE id = :other"),
    "audit_added": _sql("UPDATE audit_log SET object_id = 999 WHERE action = 'registration.added'"),
    "entries": _sql("UPDATE registrations SET status = 'entered' WHERE id = :waitlisted"),  # a first-come event
    "lottery_draws": _sql("UPDATE events SET lottery_drawn_at = starts_at, lottery_seed = 7 WHERE id = :other"),
    "offers": _sql("UPDATE registrations SET offer_expires_at = queued_at WHERE id = :waitlisted"),
}


@pytest.mark.parametrize("check", sorted(PLANTED))
async def test_each_invariant_catches_a_violation_planted_in_the_data(database_url, check):
    """A clean scene first (3 seats: staff adds one, students fill the rest and one waits; the capacity
    goes from 3 to 2 and back to 3, audited), then one planted fault the named check must report."""
    engine = db.get_engine()
    scene = await _reset_and_seed(engine, [3, None])
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    event = scene.event_ids[0]
    assert await _run(sessions, scene, ("add", 0, 0, None, 0)) == "ok"
    for student in (1, 2, 3):
        assert await _run(sessions, scene, ("register", student, 0, None, 0)) == "ok"
    assert await _run(sessions, scene, ("capacity", 0, 1, 2, 0)) == "ok"  # the other event: None → 2 → None
    assert await _run(sessions, scene, ("capacity", 0, 1, None, 0)) == "ok"
    report = await invariant_report(database_url)
    assert report.violations == [] and report.passed == len(CHECKS)
    async with engine.begin() as connection:
        waitlisted = (await connection.execute(select(Registration.id).where(
            Registration.status == RegistrationStatus.WAITLISTED))).scalar_one()
        await PLANTED[check](connection, {"event": event, "other": scene.event_ids[1], "waitlisted": waitlisted})
    violations = await check_invariants(database_url)
    assert any(violation.startswith(f"{check}:") for violation in violations), violations
