"""Registrations that arrive together for one event are written together (group commit) and each student
still gets exactly what registering alone, in arrival order, would give: a seat while seats remain, then a
place in line, their own message, and their own refusal without failing the others."""

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from events import errors
from events.models import OutboxMessage, Registration, RegistrationStatus, utcnow
from events.registration import services as registration_services
from events.registration.services import RegistrationOutcome
from hyperion import db
from tests import factories


async def _students(count: int) -> list[int]:
    return [await factories.user(email=f"batch{n}@etu.test", display_name=f"Batch {n}") for n in range(count)]


async def _together(event_id: int, arrivals: list[tuple[int, dict]]) -> list[object]:
    """Everyone clicks at once (one process): the answers in arrival order, a refusal as its error."""
    async def one(user_id: int, options: dict):
        async with db.write_session() as session:
            try:
                return await registration_services.registration_create(session, event_id=event_id, user_id=user_id,
                                                                        **options)
            except errors.DomainError as error:
                return error

    return await asyncio.gather(*(one(user_id, options) for user_id, options in arrivals))


async def test_registrations_arriving_together_fill_the_seats_in_arrival_order_each_with_its_own_answer(session):
    event_id = await factories.event(association_id=await factories.association(), capacity=5)
    already, *newcomers = await _students(21)
    await factories.registration(event_id=event_id, user_id=already)  # takes the first seat
    arrivals = newcomers[:10] + [already] + newcomers[10:]  # registered already: clicks again, mid-batch

    outcomes = await _together(event_id, [(user_id, {}) for user_id in arrivals])

    answer_of = dict(zip(arrivals, outcomes, strict=True))
    assert isinstance(answer_of[already], registration_services.AlreadyRegistered)
    answers = [answer_of[user_id] for user_id in newcomers]
    assert all(isinstance(answer, RegistrationOutcome) for answer in answers), answers
    assert [answer.status for answer in answers] == [RegistrationStatus.CONFIRMED] * 4 + \
        [RegistrationStatus.WAITLISTED] * 16
    assert [answer.waitlist_position for answer in answers[4:]] == list(range(1, 17))

    rows = (await session.execute(
        select(Registration.id, Registration.user_id, Registration.status, Registration.queued_at)
        .where(Registration.event_id == event_id).order_by(Registration.queued_at, Registration.id))).all()
    assert Counter(row.status for row in rows) == {RegistrationStatus.CONFIRMED: 5, RegistrationStatus.WAITLISTED: 16}
    # The line is the arrival order: places strictly increasing, ids in the same order, seats before the line.
    assert [row.user_id for row in rows] == [already, *newcomers]
    assert all(a.queued_at < b.queued_at and a.id < b.id for a, b in zip(rows, rows[1:], strict=False))
    assert [answer.registration_id for answer in answers] == [row.id for row in rows[1:]]

    # Each newcomer is told once, with their place in line; each new seat arms its reminder.
    messages = (await session.execute(
        select(OutboxMessage.kind, OutboxMessage.recipient_id, OutboxMessage.payload)
        .where(OutboxMessage.event_id == event_id, OutboxMessage.recipient_id.in_(newcomers)))).all()
    assert Counter(message.kind for message in messages) == {
        "registration.confirmed": 4, "event.reminder": 4, "registration.waitlisted": 16}
    told = {message.recipient_id: message.payload.get("position") for message in messages
            if message.kind == "registration.waitlisted"}
    assert told == {user_id: position for position, user_id in enumerate(newcomers[4:], start=1)}


async def test_a_double_click_in_the_same_batch_registers_once(session):
    event_id = await factories.event(association_id=await factories.association(), capacity=1)
    first, twice, last = await _students(3)

    outcomes = await _together(event_id, [(first, {}), (twice, {}), (twice, {}), (last, {})])

    assert [type(outcome) for outcome in outcomes] == [
        RegistrationOutcome, RegistrationOutcome, registration_services.AlreadyRegistered, RegistrationOutcome]
    assert [outcomes[1].waitlist_position, outcomes[3].waitlist_position] == [1, 2]
    registered = Counter((await session.execute(select(Registration.user_id).where(
        Registration.event_id == event_id))).scalars())
    assert registered == {first: 1, twice: 1, last: 1}


async def test_a_refusal_in_a_batch_fails_only_its_own_request(session):
    closes = utcnow() + timedelta(days=1)
    event_id = await factories.event(association_id=await factories.association(), capacity=1,
                                     registration_closes_at=closes)
    first, late, last = await _students(3)

    outcomes = await _together(event_id, [(first, {}), (late, {"now": closes + timedelta(minutes=1)}), (last, {})])

    assert isinstance(outcomes[1], registration_services.RegistrationClosed)
    assert [outcomes[0].status, outcomes[2].status] == [RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED]
    assert outcomes[2].waitlist_position == 1
    registered = set((await session.execute(select(Registration.user_id).where(
        Registration.event_id == event_id))).scalars())
    assert registered == {first, last}
