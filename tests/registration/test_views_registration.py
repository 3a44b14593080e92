"""Registering from the event page, leaving, the overlap warning, and My events."""

from datetime import timedelta

from django.test import AsyncClient
from sqlalchemy import select

from events.models import EventStatus, Registration, RegistrationStatus, utcnow
from tests import factories, support

EN = {"Accept-Language": "en"}


async def _student(client: AsyncClient, email: str = "alice@etu.test", name: str = "Alice") -> int:
    user_id = await factories.user(email=email, display_name=name)
    await support.login(client, user_id)
    return user_id


async def test_register_from_the_event_page_confirms_and_the_page_says_so(async_client, session):
    event_id = await factories.event(association_id=await factories.association(), slug="gala",
                                          capacity=3)
    user_id = await _student(async_client)
    response = await async_client.post("/events/gala/register/", headers=EN)
    assert response.status_code == 302 and response["Location"] == "/events/gala/"
    page = (await async_client.get("/events/gala/", headers=EN)).text
    assert "your place is confirmed" in page and "Leave this event" in page and "2 seats left" in page
    status = (await session.execute(select(Registration.status).where(
        Registration.event_id == event_id, Registration.user_id == user_id))).scalar_one()
    assert status == RegistrationStatus.CONFIRMED


async def test_full_event_offers_the_waitlist_and_shows_my_position(async_client):
    event_id = await factories.event(association_id=await factories.association(), slug="gala",
                                          capacity=1)
    await factories.registration(event_id=event_id, user_id=await factories.user(email="x@etu.test"))
    await _student(async_client)
    assert "Join the waitlist" in (await async_client.get("/events/gala/", headers=EN)).text
    await async_client.post("/events/gala/register/", headers=EN)
    page = (await async_client.get("/events/gala/", headers=EN)).text
    assert "You are on the waitlist, position 1." in page and "Leave the waitlist" in page


async def test_registering_twice_shows_a_message_and_keeps_one_registration(async_client, session):
    event_id = await factories.event(association_id=await factories.association(), slug="gala")
    await _student(async_client)
    await async_client.post("/events/gala/register/", headers=EN)
    await async_client.post("/events/gala/register/", headers=EN)
    page = (await async_client.get("/events/gala/", headers=EN)).text
    assert "already registered" in page
    assert len((await session.execute(select(Registration.id).where(Registration.event_id == event_id))).all()) == 1


async def test_anonymous_register_goes_to_login_and_get_is_refused(async_client, session):
    await factories.event(association_id=await factories.association(), slug="gala")
    response = await async_client.post("/events/gala/register/")
    assert response.status_code == 302 and response["Location"].startswith("/account/login/")
    assert (await async_client.get("/events/gala/register/")).status_code == 405
    assert (await session.execute(select(Registration.id))).first() is None


async def test_registering_for_an_unpublished_or_unknown_event_is_404(async_client, session):
    await factories.event(association_id=await factories.association(), slug="draft",
                               status=EventStatus.DRAFT)
    await _student(async_client)
    assert (await async_client.post("/events/draft/register/")).status_code == 404
    assert (await async_client.post("/events/nope/register/")).status_code == 404
    # The overlap page's confirmation goes straight to the service, which finds only published events.
    for slug in ("draft", "nope"):
        response = await async_client.post(f"/events/{slug}/register/", {"confirm_overlap": "yes"})
        assert response.status_code == 404
    assert (await session.execute(select(Registration.id))).first() is None


async def test_overlapping_event_asks_for_confirmation_before_registering(async_client, session):
    association_id = await factories.association()
    start = utcnow() + timedelta(days=2)
    await factories.event(association_id=association_id, slug="concert", title="Concert", starts_at=start)
    second = await factories.event(association_id=association_id, slug="match", title="Match",
                                        starts_at=start + timedelta(hours=1))
    await _student(async_client)
    await async_client.post("/events/concert/register/")
    warning = await async_client.post("/events/match/register/", headers=EN)
    assert warning.status_code == 200 and "overlaps" in warning.text and "Concert" in warning.text
    assert (await session.execute(select(Registration.id).where(Registration.event_id == second))).first() is None
    confirmed = await async_client.post("/events/match/register/", {"confirm_overlap": "yes"})
    assert confirmed.status_code == 302
    assert (await session.execute(select(Registration.id).where(Registration.event_id == second))).first()


async def test_leaving_frees_the_seat_for_the_first_waitlisted(async_client, session):
    event_id = await factories.event(association_id=await factories.association(), slug="gala",
                                          capacity=1)
    await _student(async_client)
    await async_client.post("/events/gala/register/")
    other = AsyncClient()
    other_id = await _student(other, email="bob@etu.test", name="Bob")
    await other.post("/events/gala/register/")
    response = await async_client.post("/events/gala/leave/", headers=EN)
    assert response.status_code == 302
    assert "your seat has been freed" in (await async_client.get("/events/gala/", headers=EN)).text
    bob = (await session.execute(select(Registration.status).where(
        Registration.event_id == event_id, Registration.user_id == other_id))).scalar_one()
    assert bob == RegistrationStatus.CONFIRMED
    assert "your place is confirmed" in (await other.get("/events/gala/", headers=EN)).text


async def test_my_events_lists_states_positions_and_overlaps_upcoming_first(async_client):
    association_id = await factories.association()
    start = utcnow() + timedelta(days=3)
    a = await factories.event(association_id=association_id, slug="a", title="Atelier A", starts_at=start)
    b = await factories.event(association_id=association_id, slug="b", title="Bal B",
                                   starts_at=start + timedelta(hours=1))
    full = await factories.event(association_id=association_id, slug="full", title="Complet C", capacity=1,
                                      starts_at=start + timedelta(days=2))
    past = await factories.event(association_id=association_id, slug="old", title="Ancien D",
                                      starts_at=utcnow() - timedelta(days=5))
    gone = await factories.event(association_id=association_id, slug="gone", title="Quitté E",
                                      starts_at=start + timedelta(days=3))
    await factories.registration(event_id=full, user_id=await factories.user(email="z@etu.test"))
    me = await _student(async_client)
    for event_id in (a, b, full, gone):  # confirmed, confirmed, in line, then left below
        await factories.registration(event_id=event_id, user_id=me)
    await factories.registration_leave(event_id=gone, user_id=me)
    await support.registration_create_raw(event_id=past, user_id=me)  # raw: registration refuses a past event
    page = (await async_client.get("/me/events/", headers=EN)).text
    upcoming, past_part = page.split(">Past<")
    titles = ("Atelier A", "Bal B", "Complet C", "Quitté E")
    assert [upcoming.index(title) for title in titles] == sorted(upcoming.index(title) for title in titles)
    assert "Ancien D" in past_part and "Ancien D" not in upcoming
    assert "Waitlisted · position 1" in upcoming
    assert "Cancelled (you left)" in upcoming
    assert "Overlaps with: Bal B" in upcoming and "Overlaps with: Atelier A" in upcoming


async def test_my_events_empty_state_points_to_the_list(async_client):
    await _student(async_client)
    page = (await async_client.get("/me/events/", headers=EN)).text
    assert "not registered for any upcoming event" in page and 'href="/"' in page
