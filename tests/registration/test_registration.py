"""Registration rules: seats, waitlist in arrival order, leaving and promotion, windows."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from events import errors
from events.models import Registration, RegistrationStatus, utcnow
from events.registration import leaving
from events.registration import services as registration_services
from events.registration.services import RegistrationOutcome
from events.rules import seats
from hyperion import db
from tests import factories


async def register(event_id: int, user_id: int, **kwargs) -> registration_services.RegistrationOutcome:
    async with db.write_session() as session:
        return await registration_services.registration_create(session, event_id=event_id, user_id=user_id, **kwargs)


async def leave(event_id: int, user_id: int, **kwargs) -> leaving.LeaveOutcome:
    async with db.write_session() as session:
        return await leaving.registration_leave(session, event_id=event_id, user_id=user_id, **kwargs)


async def students(count: int) -> list[int]:
    return [await factories.user(email=f"student{n}@etu.test", display_name=f"Student {n}")
            for n in range(count)]


async def statuses(session, event_id: int) -> dict[int, RegistrationStatus]:
    rows = await session.execute(select(Registration.user_id, Registration.status)
                                 .where(Registration.event_id == event_id))
    return dict(rows.all())


async def test_registering_with_seats_left_confirms(session):
    event_id = await factories.event(association_id=await factories.association(), capacity=2)
    (alice,) = await students(1)
    outcome = await register(event_id, alice)
    assert outcome == RegistrationOutcome(RegistrationStatus.CONFIRMED, None)
    assert await statuses(session, event_id) == {alice: RegistrationStatus.CONFIRMED}


async def test_full_event_puts_new_registrants_on_the_waitlist_in_order(session):
    event_id = await factories.event(association_id=await factories.association(), capacity=1)
    first, second, third = await students(3)
    await register(event_id, first)
    assert await register(event_id, second) == RegistrationOutcome(RegistrationStatus.WAITLISTED, 1)
    assert await register(event_id, third) == RegistrationOutcome(RegistrationStatus.WAITLISTED, 2)


async def test_unlimited_event_never_waitlists():
    event_id = await factories.event(association_id=await factories.association(), capacity=None)
    for student in await students(5):
        assert (await register(event_id, student)).status == RegistrationStatus.CONFIRMED


async def test_registering_twice_is_refused_and_keeps_one_registration(session):
    event_id = await factories.event(association_id=await factories.association())
    (alice,) = await students(1)
    await register(event_id, alice)
    with pytest.raises(registration_services.AlreadyRegistered):
        await register(event_id, alice)
    assert await statuses(session, event_id) == {alice: RegistrationStatus.CONFIRMED}


async def test_leaving_promotes_the_first_waitlisted_student(session):
    event_id = await factories.event(association_id=await factories.association(), capacity=1)
    first, second, third = await students(3)
    for student in (first, second, third):
        await register(event_id, student)
    outcome = await leave(event_id, first)
    assert outcome.promoted_user_ids == (second,)
    assert await statuses(session, event_id) == {
        first: RegistrationStatus.CANCELLED, second: RegistrationStatus.CONFIRMED,
        third: RegistrationStatus.WAITLISTED}


async def test_leaving_the_waitlist_promotes_nobody_and_moves_the_line_up(session):
    event_id = await factories.event(association_id=await factories.association(), capacity=1)
    first, second, third = await students(3)
    for student in (first, second, third):
        await register(event_id, student)
    assert (await leave(event_id, second)).promoted_user_ids == ()
    third_id = (await session.execute(select(Registration.id).where(Registration.user_id == third))).scalar_one()
    assert await seats.waitlist_position(session, registration_id=third_id) == 1


async def test_coming_back_after_leaving_joins_the_end_of_the_line():
    event_id = await factories.event(association_id=await factories.association(), capacity=1)
    first, second, third = await students(3)
    for student in (first, second, third):
        await register(event_id, student)
    await leave(event_id, second)
    assert await register(event_id, second) == RegistrationOutcome(RegistrationStatus.WAITLISTED, 2)


async def test_registration_window_is_enforced():
    association_id = await factories.association()
    not_yet = await factories.event(association_id=association_id, slug="later",
                                         registration_opens_at=utcnow() + timedelta(days=1))
    closed = await factories.event(association_id=association_id, slug="closed",
                                        registration_closes_at=utcnow() - timedelta(minutes=1))
    started = await factories.event(association_id=association_id, slug="started",
                                         starts_at=utcnow() - timedelta(hours=1))
    (alice,) = await students(1)
    for event_id in (not_yet, closed, started):
        with pytest.raises(registration_services.RegistrationClosed):
            await register(event_id, alice)


@pytest.mark.parametrize("status", ["draft", "submitted", "declined", "cancelled"])
async def test_only_published_events_take_registrations(status, session):
    event_id = await factories.event(association_id=await factories.association(), status=status)
    (alice,) = await students(1)
    with pytest.raises(registration_services.RegistrationClosed):
        await register(event_id, alice)
    assert await statuses(session, event_id) == {}


async def test_leaving_after_the_deadline_is_refused(session):
    event_id = await factories.event(association_id=await factories.association(),
                                          unregistration_closes_at=utcnow() + timedelta(minutes=5))
    (alice,) = await students(1)
    await register(event_id, alice)
    with pytest.raises(leaving.UnregistrationClosed):
        await leave(event_id, alice, now=utcnow() + timedelta(minutes=10))
    assert await statuses(session, event_id) == {alice: RegistrationStatus.CONFIRMED}


async def test_leaving_without_a_registration_is_refused():
    event_id = await factories.event(association_id=await factories.association())
    (alice,) = await students(1)
    with pytest.raises(leaving.NotRegistered):
        await leave(event_id, alice)


async def test_unknown_event_is_reported_as_such():
    (alice,) = await students(1)
    with pytest.raises(errors.EventNotFound):
        await register(999_999, alice)
