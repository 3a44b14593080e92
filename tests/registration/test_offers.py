"""Waitlist offers: for an event whose promotions are offers, a freed seat is held for the first in line until
they accept it (confirmed), decline it, or let it expire (it passes to the next in line, both told); the seat
is taken meanwhile, so nobody else gets it; the pages, the feed, the e-mails and the staff's list show it."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import AsyncClient
from django.urls import reverse
from icalendar import Calendar
from sqlalchemy import select, update

from events.accounts import auth
from events.models import OutboxMessage, Registration, RegistrationStatus, User, utcnow
from events.registration import leaving, offers
from events.registration import services as registration_services
from events.rules import offers as offer_rules
from faults.invariants import check_invariants
from hyperion import db
from tests import factories, support

CONFIRMED, WAITLISTED = RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED
OFFERED, EXPIRED = RegistrationStatus.OFFERED, RegistrationStatus.EXPIRED


async def full_event_with_line(*, line: int = 2, offer_hours: int | None = 24, starts_in=timedelta(days=7),
                               **fields) -> tuple[int, int, list[int]]:
    """An event of one seat whose promotions are offers: its seat holder, and ``line`` students waiting."""
    organiser = await factories.association()
    event_id = await factories.event(association_id=organiser, capacity=1, offer_hours=offer_hours,
                                     starts_at=utcnow() + starts_in, **fields)
    holder, *waiting = [await factories.user(email=f"s{n}@etu.test", display_name=f"Student {n}")
                        for n in range(line + 1)]
    for user_id in (holder, *waiting):
        await factories.registration(event_id=event_id, user_id=user_id)
    return event_id, holder, waiting


async def states(event_id: int) -> dict[int, tuple[RegistrationStatus, object]]:
    async with db.read_session() as session:
        rows = await session.execute(select(Registration.user_id, Registration.status, Registration.offer_expires_at)
                                     .where(Registration.event_id == event_id))
        return {row.user_id: (row.status, row.offer_expires_at) for row in rows}


async def accept(event_id: int, user_id: int) -> None:
    async with db.write_session() as session:
        await offers.offer_accept(session, event_id=event_id, user_id=user_id)


async def deadline_passes(event_id: int) -> None:
    """Time passes every pending offer's deadline of the event (as waiting would)."""
    # raw: no service moves the clock.
    async with db.write_session() as session, session.begin():
        await session.execute(update(Registration).where(
            Registration.event_id == event_id, Registration.status == OFFERED)
            .values(offer_expires_at=utcnow() - timedelta(seconds=1)))


async def kinds_for(session, event_id: int) -> Counter:
    return Counter((await session.execute(select(OutboxMessage.kind, OutboxMessage.recipient_id).where(
        OutboxMessage.event_id == event_id, OutboxMessage.kind.like("registration.%")))).all())


# The rule.

def test_an_offer_lasts_its_hours_but_at_most_half_the_time_left_and_none_when_too_close():
    class Event:
        def __init__(self, hours, starts_in):
            self.offer_hours, self.starts_at = hours, now + starts_in

    now = utcnow()
    assert offer_rules.offer_expires_at(Event(None, timedelta(days=7)), now) is None
    assert offer_rules.offer_expires_at(Event(24, timedelta(days=7)), now) == now + timedelta(hours=24)
    assert offer_rules.offer_expires_at(Event(24, timedelta(hours=10)), now) == now + timedelta(hours=5)
    assert offer_rules.offer_expires_at(Event(24, timedelta(minutes=59)), now) is None  # 29.5 min: no time
    assert offer_rules.offer_is_open(now + timedelta(seconds=1), now)
    assert not offer_rules.offer_is_open(now, now) and not offer_rules.offer_is_open(None, now)


# The services.

async def test_a_freed_seat_is_offered_to_the_first_in_line_and_held_for_them(session):
    event_id, holder, (first, second) = await full_event_with_line()
    outcome = await factories.registration_leave(event_id=event_id, user_id=holder)
    assert outcome.promoted_user_ids == (first,)
    after = await states(event_id)
    assert after[first][0] == OFFERED and after[second] == (WAITLISTED, None)
    assert abs(after[first][1] - (utcnow() + timedelta(hours=24))) < timedelta(minutes=1)
    # The seat is held: a newcomer joins the line, behind the second.
    newcomer = await factories.user(email="late@etu.test")
    late = await factories.registration(event_id=event_id, user_id=newcomer)
    assert (late.status, late.waitlist_position) == (WAITLISTED, 2)
    # The offer is told with its deadline; no reminder until it is accepted.
    offered = (await session.execute(select(OutboxMessage).where(
        OutboxMessage.kind == "registration.offered"))).scalar_one()
    assert offered.recipient_id == first and offered.payload["expires_at"] == after[first][1].isoformat()
    assert not (await session.execute(select(OutboxMessage.id).where(
        OutboxMessage.kind == "event.reminder", OutboxMessage.recipient_id == first))).first()


async def test_accepting_confirms_the_seat_arms_the_reminder_and_a_second_accept_is_refused(session, database_url):
    event_id, holder, (first, second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    await accept(event_id, first)
    after = await states(event_id)
    assert after[first] == (CONFIRMED, None) and after[second] == (WAITLISTED, None)
    kinds = await kinds_for(session, event_id)
    assert kinds[("registration.accepted", first)] == 1
    assert (await session.execute(select(OutboxMessage.id).where(
        OutboxMessage.kind == "event.reminder", OutboxMessage.recipient_id == first))).first()
    with pytest.raises(registration_services.NoOfferPending):
        await accept(event_id, first)
    with pytest.raises(registration_services.NoOfferPending):
        await accept(event_id, second)  # in line, nothing offered
    assert await check_invariants(database_url) == []


async def test_an_offer_not_accepted_in_time_passes_to_the_next_and_both_are_told(session, database_url):
    event_id, holder, (first, second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    handled, next_deadline = await offers.expire_due()  # the sweeper, before the deadline: nothing to do
    assert handled == 0 and next_deadline == (await states(event_id))[first][1]
    await deadline_passes(event_id)
    handled, next_deadline = await offers.expire_due()
    after = await states(event_id)
    assert handled == 1 and after[first][0] == EXPIRED and after[second][0] == OFFERED
    assert next_deadline == after[second][1]
    assert (await offers.expire_due())[0] == 0  # once
    kinds = await kinds_for(session, event_id)
    assert kinds[("registration.offer_expired", first)] == 1 and kinds[("registration.offered", second)] == 1
    # Too late to accept; the expired student may join the line again, at its end.
    with pytest.raises(registration_services.OfferExpired):
        await accept(event_id, first)
    again = await factories.registration(event_id=event_id, user_id=first)
    assert (again.status, again.waitlist_position) == (WAITLISTED, 1)
    assert (await states(event_id))[first] == (WAITLISTED, None)
    assert await check_invariants(database_url) == []


async def test_accepting_after_the_deadline_is_refused_and_the_seat_goes_on_at_once():
    event_id, holder, (first, second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    await deadline_passes(event_id)  # the sweeper has not come by yet
    with pytest.raises(registration_services.OfferExpired):
        await accept(event_id, first)
    after = await states(event_id)
    assert after[first][0] == EXPIRED and after[second][0] == OFFERED  # committed despite the refusal


async def test_declining_is_allowed_after_the_last_moment_to_leave_and_offers_the_seat_on():
    event_id, holder, (first, second) = await full_event_with_line(
        unregistration_closes_at=utcnow() + timedelta(hours=1))
    await factories.registration_leave(event_id=event_id, user_id=holder)
    async with db.write_session() as write, write.begin():  # raw: the last moment to leave passes
        from events.models import Event
        await write.execute(update(Event).where(Event.id == event_id).values(
            unregistration_closes_at=utcnow() - timedelta(minutes=1)))
    declined = await factories.registration_leave(event_id=event_id, user_id=first)
    assert declined.previous_status == OFFERED and declined.promoted_user_ids == (second,)
    await accept(event_id, second)
    with pytest.raises(leaving.UnregistrationClosed):  # a confirmed seat still may not leave
        await factories.registration_leave(event_id=event_id, user_id=second)


async def test_close_to_the_event_a_promotion_confirms_at_once():
    event_id, holder, (first, _second) = await full_event_with_line(starts_in=timedelta(minutes=50))
    await factories.registration_leave(event_id=event_id, user_id=holder)
    assert (await states(event_id))[first] == (CONFIRMED, None)


async def test_the_capacity_cannot_go_below_the_seats_taken_by_offers():
    event_id, holder, (first, _second) = await full_event_with_line()
    async with db.write_session() as write:
        from events.staff import services as staff_services
        await staff_services.event_update(write, actor=factories.SET_UP, event_id=event_id, values={"capacity": 2})
    assert (await states(event_id))[first][0] == OFFERED  # the new seat is offered too
    async with db.write_session() as write:
        with pytest.raises(staff_services.CapacityBelowConfirmed):
            await staff_services.event_update(write, actor=factories.SET_UP, event_id=event_id,
                                              values={"capacity": 1})


async def test_an_accept_racing_the_expiry_ends_one_way_only(database_url):
    """The student presses "accept" as the deadline passes and the sweeper comes by: under the event's lock,
    either the seat is theirs or it went on, never both."""
    event_id, holder, (first, second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    await deadline_passes(event_id)
    results = await asyncio.gather(accept(event_id, first), offers.expire_due(), return_exceptions=True)
    assert isinstance(results[0], registration_services.OfferExpired), results
    after = await states(event_id)
    assert after[first][0] == EXPIRED and after[second][0] == OFFERED
    assert await check_invariants(database_url) == []


async def test_a_cancelled_events_offers_are_left_alone_by_the_sweeper(session):
    event_id, holder, (first, _second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    await factories.event_transition(event_id=event_id, action="cancel")
    await deadline_passes(event_id)
    assert (await offers.expire_due())[0] == 0
    assert (await states(event_id))[first][0] == OFFERED
    assert (await kinds_for(session, event_id))[("registration.offer_expired", first)] == 0


# What people see.

@pytest.fixture
async def english_client():
    def client_for(user_id):
        async def logged_in():
            client = AsyncClient()
            client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
            await support.login(client, user_id)
            return client
        return logged_in()
    return client_for


async def test_the_event_page_offers_the_seat_and_accepting_it_confirms(english_client):
    event_id, holder, (first, second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    client = await english_client(first)
    page = (await client.get("/events/gala/")).content.decode()
    assert "A seat is offered to you: accept it before" in page
    assert "Accept the seat" in page and "Decline the seat" in page
    mine = (await client.get("/me/events/")).content.decode()
    assert "Seat offered: accept it" in mine and "before" in mine
    response = await client.post("/events/gala/accept/")
    assert response.status_code == 302
    page = (await client.get(response["Location"])).content.decode()
    assert "You accepted the seat: your place is confirmed." in page
    assert "You are registered: your place is confirmed." in page
    # Someone with nothing offered gets a message, not an error page.
    other = await english_client(second)
    response = await other.post("/events/gala/accept/")
    assert response.status_code == 302
    assert "No seat is offered to you for this event." in (await other.get(response["Location"])).content.decode()


async def test_the_expired_student_sees_why_and_can_join_the_line_again(english_client):
    event_id, holder, (first, _second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    await deadline_passes(event_id)
    await offers.expire_due()
    client = await english_client(first)
    page = (await client.get("/events/gala/")).content.decode()
    assert "The seat offered to you was not accepted in time and passed to the next in line." in page
    assert "Join the waitlist" in page
    response = await client.post("/events/gala/accept/")
    assert "Your offer expired" in (await client.get(response["Location"])).content.decode()


async def test_declining_from_the_page_passes_the_seat_on(english_client):
    event_id, holder, (first, second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    client = await english_client(first)
    response = await client.post("/events/gala/leave/")
    page = (await client.get(response["Location"])).content.decode()
    assert "You declined the seat: it goes to the next in line." in page
    assert (await states(event_id))[second][0] == OFFERED


async def test_the_personal_feed_shows_the_offer_with_its_deadline(async_client):
    event_id, holder, (first, _second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    async with db.write_session() as write, write.begin():  # raw: a feed token of the test's choosing
        await write.execute(update(User).where(User.id == first).values(
            feed_token_hash=auth.feed_token_hash("first-secret-token"), language="en"))
    response = await async_client.get(reverse("feed_personal", args=["first-secret-token"]))
    (vevent,) = Calendar.from_ical(response.content).events
    assert str(vevent["SUMMARY"]).startswith("Gala (seat offered: accept before ")
    assert str(vevent["STATUS"]) == "TENTATIVE"


async def test_staff_see_offers_pending_and_expired(async_client):
    event_id, holder, (first, second) = await full_event_with_line()
    await factories.registration_leave(event_id=event_id, user_id=holder)
    await deadline_passes(event_id)
    await offers.expire_due()
    staff = await factories.user(email="staff@etu.test", display_name="Staff", is_staff=True)
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    await support.login(client, staff)
    page = (await client.get(reverse("staff_attendees", args=[event_id]))).content.decode()
    pending = page.index("Seats offered, not answered yet")
    expired = page.index("Offers expired")
    assert pending < page.index("Student 2") < page.index("Waitlist") < expired < page.index("Student 1")

