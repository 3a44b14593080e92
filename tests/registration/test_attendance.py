"""Attendance and no-shows: an association may delay the openings of students who held a seat at one of its
events where attendance was taken and did not come; the student is told why and until when, the service
refuses them until their own opening, and nobody else is touched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from sqlalchemy import select, update

from events.models import Association, AuditEntry, Event, Registration, RegistrationStatus, Role, utcnow
from events.registration import queries as registration_queries
from events.registration import services as registration_services
from events.rules import attendance
from hyperion import db
from tests import factories, support


def test_a_no_show_delays_the_openings_its_penalty_still_covers():
    now = utcnow()
    last = attendance.NoShow("Gala", now - timedelta(days=10))
    opening = now + timedelta(hours=1)
    assert attendance.delayed_opening(opening, last, delay_hours=2, penalty_days=30) == opening + timedelta(hours=2)
    assert attendance.delayed_opening(opening, None, delay_hours=2, penalty_days=30) == opening
    assert attendance.delayed_opening(opening, last, delay_hours=None, penalty_days=30) == opening  # off
    assert attendance.delayed_opening(opening, last, delay_hours=2, penalty_days=5) == opening  # penalty over
    assert attendance.delayed_opening(None, last, delay_hours=2, penalty_days=30) is None  # no opening to delay


async def past_event_with_attendance(organiser: int, *, slug: str, present: list[int], absent: list[int],
                                     ended_days_ago: float = 3) -> int:
    """An event of ``organiser`` that ended ``ended_days_ago``: ``present`` were checked in, ``absent`` not."""
    event_id = await factories.event(association_id=organiser, slug=slug, title=slug.title(), capacity=None)
    for user_id in (*present, *absent):
        await factories.registration(event_id=event_id, user_id=user_id)
    # raw: time passes (registration refuses a past event), and the present were checked in as it ended.
    async with db.write_session() as session, session.begin():
        ended = utcnow() - timedelta(days=ended_days_ago)
        await session.execute(update(Event).where(Event.id == event_id).values(
            starts_at=ended - timedelta(hours=3), ends_at=ended))
        if present:
            await session.execute(update(Registration).where(
                Registration.event_id == event_id, Registration.user_id.in_(present)).values(checked_in_at=ended))
    return event_id


async def students(*names: str) -> list[int]:
    return [await factories.user(email=f"{name}@etu.test", display_name=name.title()) for name in names]


async def test_only_a_confirmed_seat_missed_where_attendance_was_taken_is_a_no_show():
    organiser = await factories.association(no_show_delay_hours=2)
    alice, bob, carol, dan = await students("alice", "bob", "carol", "dan")
    await past_event_with_attendance(organiser, slug="gala", present=[bob], absent=[alice])
    await past_event_with_attendance(organiser, slug="quiz", present=[], absent=[carol])  # no attendance taken
    other = await factories.association(slug="ski", name="Ski")
    await past_event_with_attendance(other, slug="ski-trip", present=[bob], absent=[dan])  # another association
    async with db.read_connection() as connection:
        found = await registration_queries.latest_no_shows(
            connection, user_ids=[alice, bob, carol, dan], association_id=organiser,
            since=utcnow() - timedelta(days=30), now=utcnow())
    assert list(found) == [alice] and found[alice].event_title == "Gala"


async def opening_event(organiser: int, *, slug: str = "next", opened_minutes_ago: float = 5) -> int:
    return await factories.event(association_id=organiser, slug=slug, title="Next", capacity=10,
                                 registration_opens_at=utcnow() - timedelta(minutes=opened_minutes_ago))


async def register(event_id: int, user_id: int):
    async with db.write_session() as session:
        return await registration_services.registration_create(session, event_id=event_id, user_id=user_id)


async def test_a_no_show_registers_after_the_delay_and_the_others_at_once():
    organiser = await factories.association(no_show_delay_hours=2)
    alice, bob, newcomer = await students("alice", "bob", "newcomer")
    await past_event_with_attendance(organiser, slug="gala", present=[bob], absent=[alice])
    event_id = await opening_event(organiser)
    with pytest.raises(registration_services.RegistrationNotYetOpen) as refused:
        await register(event_id, alice)
    expected = utcnow() - timedelta(minutes=5) + timedelta(hours=2)
    assert abs(refused.value.opens_at - expected) < timedelta(minutes=1)
    assert (await register(event_id, bob)).status == RegistrationStatus.CONFIRMED
    assert (await register(event_id, newcomer)).status == RegistrationStatus.CONFIRMED
    async with db.write_session() as session, session.begin():  # raw: two hours pass (no service moves the clock)
        await session.execute(update(Event).where(Event.id == event_id).values(
            registration_opens_at=utcnow() - timedelta(hours=2, minutes=1)))
    assert (await register(event_id, alice)).status == RegistrationStatus.CONFIRMED


async def test_the_penalty_ends_and_an_association_without_delays_delays_nobody():
    organiser = await factories.association(no_show_delay_hours=2, no_show_penalty_days=7)
    relaxed = await factories.association(slug="ski", name="Ski")
    alice, = await students("alice")
    await past_event_with_attendance(organiser, slug="old", present=[], absent=[alice], ended_days_ago=8)
    await past_event_with_attendance(relaxed, slug="ski-trip", present=[], absent=[alice])
    await past_event_with_attendance(organiser, slug="taken", present=[await factories.user(email="b@etu.test")],
                                     absent=[], ended_days_ago=1)
    # The organiser's no-show was 8 days ago, its penalty lasts 7: over. (The ski trip took no attendance.)
    assert (await register(await opening_event(organiser), alice)).status == RegistrationStatus.CONFIRMED
    assert (await register(await opening_event(relaxed, slug="ski-next"), alice)).status == \
        RegistrationStatus.CONFIRMED


@pytest.mark.usefixtures("cache_on")
async def test_the_student_is_told_why_and_until_when_and_the_others_see_nothing():
    organiser = await factories.association(no_show_delay_hours=2)
    alice, bob = await students("alice", "bob")
    await past_event_with_attendance(organiser, slug="gala", present=[bob], absent=[alice])
    await opening_event(organiser)
    page = (await (await support.client_as(alice)).get("/events/next/")).content.decode()
    assert "You held a seat at &#39;Gala&#39;" in page or "You held a seat at 'Gala'" in page
    assert "registration for the events of BDE opens 2 hours later for you." in page
    assert " disabled>Register<" in page  # counting down to her own opening
    page = (await (await support.client_as(bob)).get("/events/next/")).content.decode()
    assert "You held a seat" not in page and ">Register<" in page and " disabled>Register<" not in page


async def test_managers_set_the_delay_on_the_association_form_audited(session):
    organiser = await factories.association()
    manager = await factories.user(email="manager@etu.test")
    await factories.member(association_id=organiser, user_id=manager, role=Role.MANAGER)
    client = await support.client_as(manager)
    form = (await client.get(reverse("staff_association_edit", args=[organiser]))).content.decode()
    assert "No-shows register later (hours)" in form
    response = await client.post(reverse("staff_association_edit", args=[organiser]), {
        "name": "BDE", "slug": "bde", "description": "", "no_show_delay_hours": "3", "no_show_penalty_days": "45"})
    assert response.status_code == 302
    saved = (await session.execute(select(Association.no_show_delay_hours, Association.no_show_penalty_days)
                                   .where(Association.id == organiser))).one()
    assert tuple(saved) == (3, 45)
    audit = (await session.execute(select(AuditEntry).where(AuditEntry.action == "association.updated"))).scalar_one()
    assert audit.changes["no_show_delay_hours"] == [None, 3]
    wrong = await client.post(reverse("staff_association_edit", args=[organiser]), {
        "name": "BDE", "slug": "bde", "description": "", "no_show_delay_hours": "-1", "no_show_penalty_days": "0"})
    assert wrong.status_code == 400


@pytest.mark.usefixtures("cache_on")
async def test_a_lottery_window_keeps_a_no_show_out_until_their_own_opening():
    """An entry in a draw is written without the event's lock; while a no-show's later opening can still come,
    asks take the locked path, which reads the no-shows: the no-show is refused with their own opening, the
    others get their entries, through Django's view and through the quick path in front of it alike."""
    from hyperion.app import HyperionApp
    from tests.registration.test_quick_entries import Student, entries

    organiser = await factories.association(no_show_delay_hours=2)
    alice, bob, carol = await students("alice", "bob", "carol")
    await past_event_with_attendance(organiser, slug="gala", present=[bob], absent=[alice])
    event_id = await factories.event(association_id=organiser, slug="ski", title="Ski", capacity=1,
                                     registration_opens_at=utcnow() - timedelta(minutes=1), lottery_minutes=10)
    app = HyperionApp()
    browsers = {user: await Student(app, user, "en").start() for user in (bob, carol, alice)}
    for user, browser in browsers.items():  # Bob's ask first: an answer Django gave, that could be replayed
        await browser.open("/events/ski/")
        assert (await browser.ask("ski")).status == 302, user
    assert await entries(event_id) == {bob: 1, carol: 1}  # not Alice's
    with pytest.raises(registration_services.RegistrationNotYetOpen):
        await register(event_id, alice)
