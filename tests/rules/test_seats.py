"""Seats have one owner, events/rules/seats.py: its SQL counts and its ``SeatState`` decide "N seats left" and
"full" for the lists, the "seats left only" filter, the event page, the live counter, the management area and
the services that place, promote and resize. An event exactly full is full everywhere; one seat short of
full is open everywhere; and bending the owner's rule bends every consumer with it."""

from __future__ import annotations

import pytest
from django.test import AsyncClient
from sqlalchemy import select

from events.live import broadcast
from events.models import OutboxMessage, RegistrationStatus
from events.registration import leaving
from events.registration import services as registration_services
from events.rules.permissions import Actor
from events.rules.seats import SeatState
from events.staff import queries as staff_queries
from events.staff import services as staff_services
from events.views import public
from hyperion import db
from tests import factories
from tests.rules import _pages


async def _event_with(slug: str, *, capacity: int | None, confirmed: int, waitlisted: int = 0,
                      association_id: int) -> int:
    event_id = await factories.event(association_id=association_id, slug=slug, title=slug, capacity=capacity)
    for number in range(confirmed + waitlisted):  # the waitlisted ones come once the seats are taken
        user_id = await factories.user(email=f"{slug}-{number}@etu.test", display_name=f"{slug} {number}")
        outcome = await factories.registration(event_id=event_id, user_id=user_id)
        assert outcome.status == (RegistrationStatus.CONFIRMED if number < confirmed else RegistrationStatus.WAITLISTED)
    return event_id


@pytest.fixture
async def boundary():
    """Three events at the rule's boundary: exactly full (with one in line), one seat left, no capacity."""
    association_id = await factories.association(slug="club", name="Club")
    return {
        "exactly-full": await _event_with("exactly-full", capacity=2, confirmed=2, waitlisted=1,
                                          association_id=association_id),
        "one-left": await _event_with("one-left", capacity=2, confirmed=1, association_id=association_id),
        "unlimited": await _event_with("unlimited", capacity=None, confirmed=3, association_id=association_id),
    }


FULL = {"exactly-full": True, "one-left": False, "unlimited": False}


async def test_an_event_exactly_full_is_full_in_every_list_page_and_counter(boundary):
    client = AsyncClient()
    home = (await client.get("/")).content.decode()
    association_page = (await client.get("/associations/club/")).content.decode()
    with_seats = _pages.slugs_listed((await client.get("/?has_seats=on")).content.decode())
    for slug, full in FULL.items():
        assert _pages.card_says_full(home, slug) is full, slug
        assert _pages.card_says_full(association_page, slug) is full, slug
        assert (slug not in with_seats) is full, slug
        page = (await client.get(f"/events/{slug}/")).content.decode()
        assert _pages.counter_says_full(page) is full, slug
        frame = await _pages.first_live_frame(client, slug)
        assert frame["full"] is full, slug
        assert frame["seats_left"] == {"exactly-full": 0, "one-left": 1, "unlimited": None}[slug]
        news = await broadcast.seat_news(boundary[slug])
        assert news.full is full and news.seats.is_full is full
        async with db.read_session() as session:
            assert (await staff_queries.admin_event(session, event_id=boundary[slug])).seats.is_full is full


async def test_the_services_place_the_next_student_as_the_pages_said(boundary):
    outcomes = {}
    for slug in FULL:
        student = await factories.user(email=f"next-{slug}@etu.test", display_name="Next")
        async with db.write_session() as session:
            outcomes[slug] = await registration_services.registration_create(
                session, event_id=boundary[slug], user_id=student)
    assert outcomes["exactly-full"].status == RegistrationStatus.WAITLISTED
    assert outcomes["exactly-full"].waitlist_position == 2  # behind the one already in line
    assert outcomes["one-left"].status == RegistrationStatus.CONFIRMED
    assert outcomes["unlimited"].status == RegistrationStatus.CONFIRMED
    # The one-left event is now exactly full: its page says so.
    page = (await AsyncClient().get("/events/one-left/")).content.decode()
    assert _pages.counter_says_full(page)


async def test_capacity_may_come_down_to_exactly_full_and_no_lower(boundary):
    staff = Actor(id=await factories.user(email="staff@etu.test", display_name="Staff", is_staff=True),
                  is_staff=True)
    async with db.write_session() as session:
        with pytest.raises(staff_services.CapacityBelowConfirmed):
            await staff_services.event_update(session, actor=staff, event_id=boundary["one-left"],
                                              values={"capacity": 0})
    async with db.write_session() as session:
        await staff_services.event_update(session, actor=staff, event_id=boundary["one-left"],
                                          values={"capacity": 1})
    page = (await AsyncClient().get("/events/one-left/")).content.decode()
    assert _pages.counter_says_full(page)


async def test_a_seat_freed_at_an_exactly_full_event_goes_to_the_first_in_line(boundary):
    async with db.read_session() as session:
        attendees = await staff_queries.attendees(session, event_id=boundary["exactly-full"])
    leaver = next(row for row in attendees if row.status == RegistrationStatus.CONFIRMED)
    async with db.write_session() as session:
        outcome = await leaving.registration_leave(session, event_id=boundary["exactly-full"], user_id=leaver.user_id)
    assert len(outcome.promoted_user_ids) == 1
    page = (await AsyncClient().get("/events/exactly-full/")).content.decode()
    assert _pages.counter_says_full(page)  # full again: the freed seat was taken from the line


async def test_bending_the_owner_s_rule_bends_the_list_the_page_the_counter_and_the_service(boundary, monkeypatch):
    """The Python side of the rule lives in SeatState alone: make it call every event full, and every
    consumer that says "full" follows, down to the e-mail (the SQL filter is the same rule in SQL, checked above)."""
    public._server_sent.cache_clear()  # frames are remembered per news: forget those made before the change
    monkeypatch.setattr(SeatState, "is_full", property(lambda seats: True))
    try:
        client = AsyncClient()
        home = (await client.get("/")).content.decode()
        assert _pages.card_says_full(home, "one-left")
        assert _pages.counter_says_full((await client.get("/events/one-left/")).content.decode())
        assert (await _pages.first_live_frame(client, "one-left"))["full"] is True
        student = await factories.user(email="bent@etu.test", display_name="Bent")
        async with db.write_session() as session:
            outcome = await registration_services.registration_create(
                session, event_id=boundary["one-left"], user_id=student)
        assert outcome.status == RegistrationStatus.WAITLISTED
        async with db.read_session() as session:  # and the e-mail says so, with the place in line
            told = (await session.execute(select(OutboxMessage.kind, OutboxMessage.payload)
                                          .where(OutboxMessage.recipient_id == student))).one()
        assert told == ("registration.waitlisted", {"position": 1})
    finally:
        public._server_sent.cache_clear()
