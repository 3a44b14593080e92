"""Seats held for the priority groups: until the hold ends, students outside the groups take only the other
seats (and join the line when only held ones are left), students of a group take the held ones first; a
freed held seat goes to the first student of a group in line; when the hold ends the sweeper gives the free
seats to the line, first come. The page says so, and the form refuses holds that make no sense."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from sqlalchemy import select, update

from events.models import Event, Registration, RegistrationStatus, Role, utcnow
from events.registration import offers
from events.staff import services as staff_services
from hyperion import db
from tests import factories, support
from tests.staff.pages import event_fields, typed

CONFIRMED, WAITLISTED = RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED


async def held_event(*, capacity: int = 2, held: int = 1) -> tuple[int, list[int], list[int]]:
    """An event open to everyone, ``held`` of its seats held for BDE's members for a day: two members, three
    other students."""
    organiser = await factories.association(slug="bde", name="BDE")
    now = utcnow()
    event_id = await factories.event(
        association_id=organiser, slug="gala", capacity=capacity, registration_opens_at=now - timedelta(hours=1),
        members_open_at=now - timedelta(hours=2), reserved_seats=held, reserved_until=now + timedelta(days=1))
    members = [await factories.user(email=f"m{n}@etu.test", display_name=f"Member {n}") for n in range(2)]
    for user_id in members:
        await factories.member(association_id=organiser, user_id=user_id, role=Role.MEMBER)
    others = [await factories.user(email=f"o{n}@etu.test", display_name=f"Other {n}") for n in range(3)]
    return event_id, members, others


async def states(event_id: int) -> dict[int, tuple[RegistrationStatus, bool]]:
    async with db.read_session() as session:
        rows = await session.execute(select(Registration.user_id, Registration.status, Registration.from_reserve)
                                     .where(Registration.event_id == event_id))
        return {row.user_id: (row.status, row.from_reserve) for row in rows}


async def test_outside_the_groups_only_the_open_seats_and_the_groups_take_the_held_ones_first():
    event_id, (member, second_member), (first, second, _third) = await held_event()
    assert (await factories.registration(event_id=event_id, user_id=first)).status == CONFIRMED
    late = await factories.registration(event_id=event_id, user_id=second)  # the one seat left is held
    assert (late.status, late.waitlist_position) == (WAITLISTED, 1)
    assert (await factories.registration(event_id=event_id, user_id=member)).status == CONFIRMED
    assert (await factories.registration(event_id=event_id, user_id=second_member)).status == WAITLISTED
    after = await states(event_id)
    assert after[first] == (CONFIRMED, False) and after[member] == (CONFIRMED, True)


async def test_a_freed_held_seat_goes_to_the_first_member_in_line_and_an_open_one_to_the_first_in_line():
    event_id, (member, second_member), (first, second, third) = await held_event()
    for user_id in (first, second, member, second_member, third):  # in line: second, second_member, third
        await factories.registration(event_id=event_id, user_id=user_id)
    held_leave = await factories.registration_leave(event_id=event_id, user_id=member)
    assert held_leave.promoted_user_ids == (second_member,)  # behind "second", but the seat is the members'
    open_leave = await factories.registration_leave(event_id=event_id, user_id=first)
    assert open_leave.promoted_user_ids == (second,)
    after = await states(event_id)
    assert after[second_member] == (CONFIRMED, True) and after[second] == (CONFIRMED, False)
    assert after[third][0] == WAITLISTED


async def test_when_the_hold_ends_the_sweeper_gives_the_held_seat_to_the_line(database_url):
    from faults.invariants import check_invariants

    event_id, _members, (first, second, _third) = await held_event()
    for user_id in (first, second):
        await factories.registration(event_id=event_id, user_id=user_id)
    handled, next_due = await offers.expire_due()
    assert handled == 0 and next_due is not None and next_due > utcnow() + timedelta(hours=23)
    async with db.write_session() as session, session.begin():  # raw: a day passes (time passing)
        await session.execute(update(Event).where(Event.id == event_id).values(
            reserved_until=utcnow() - timedelta(seconds=1)))
    assert (await offers.expire_due())[0] == 1
    assert (await states(event_id))[second] == (CONFIRMED, False)
    assert (await offers.expire_due())[0] == 0  # nothing more to give
    assert await check_invariants(database_url) == []


@pytest.mark.usefixtures("cache_on")
async def test_the_page_says_what_is_held_and_offers_the_line_to_those_outside_the_groups():
    event_id, (member, _second_member), (first, second, _third) = await held_event()
    await factories.registration(event_id=event_id, user_id=first)
    page = (await (await support.client_as(second)).get("/events/gala/")).content.decode()
    assert "1 of the seats is held for them until" in page and "Priority openings: members of BDE" in page
    assert "Join the waitlist" in page
    page = (await (await support.client_as(member)).get("/events/gala/")).content.decode()
    assert ">Register<" in page and "Join the waitlist" not in page


async def test_the_form_refuses_holds_that_make_no_sense_and_the_capacity_cannot_go_below_them(session):
    organiser = await factories.association(slug="bde", name="BDE")
    staff = await factories.user(email="staff@etu.test", is_staff=True)
    client = await support.client_as(staff)
    starts = utcnow() + timedelta(days=10)

    base = event_fields(organiser, starts=starts, title="Gala", category="party", location="", description="",
                        capacity="10", registration_opens_at=typed(starts - timedelta(days=5)))
    refusals = {
        "Seats are held for the priority groups: set at least one.":
            {"reserved_seats": "2", "reserved_until": typed(starts - timedelta(days=2))},
        "The seats held cannot be more than the seats of the event.":
            {"reserved_seats": "11", "reserved_until": typed(starts - timedelta(days=2)),
             "members_open_at": typed(starts - timedelta(days=6))},
        "Seats are held until a time after registration opens for everyone and no later than the start.":
            {"reserved_seats": "2", "reserved_until": typed(starts - timedelta(days=6)),
             "members_open_at": typed(starts - timedelta(days=6))},
        "Give both how many seats are held and until when.": {"reserved_seats": "2"},
    }
    for message, fields in refusals.items():
        response = await client.post(reverse("staff_event_new"), {**base, **fields})
        assert response.status_code == 400 and message in response.content.decode(), message
    assert (await session.execute(select(Event.id))).first() is None
    fine = await client.post(reverse("staff_event_new"), {
        **base, "reserved_seats": "4", "reserved_until": typed(starts - timedelta(days=2)),
        "members_open_at": typed(starts - timedelta(days=6))})
    assert fine.status_code == 302
    event = (await session.execute(select(Event))).scalar_one()
    assert event.reserved_seats == 4
    async with db.write_session() as write:
        with pytest.raises(staff_services.CapacityBelowConfirmed):
            await staff_services.event_update(write, actor=factories.SET_UP, event_id=event.id,
                                              values={"capacity": 3})
