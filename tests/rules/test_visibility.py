""""Published" and "goes ahead" have one owner, events/rules/visibility.py. One event in each status, and every
consumer draws the same line: the lists, the calendar, the event page, its live counter and its .ics, the
public feed and the management area show exactly the published ones (approved and cancelled); only the one
that goes ahead (approved) offers seats, takes registrations and takes attendees added by staff, and gets its
reminders sent. (The commands: exportics writes the published events, tests/ops/test_commands_ops.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import AsyncClient

from events import outbox
from events.models import EventStatus, utcnow
from events.notifications import mailer
from events.registration import services as registration_services
from events.rules import visibility
from events.rules.permissions import Actor
from events.staff import people as staff_people
from hyperion import db
from tests import factories, support
from tests.rules import _pages

STATUSES = {status.value: status for status in EventStatus}
PUBLISHED = {"approved", "cancelled"}


@pytest.fixture
async def one_per_status():
    association_id = await factories.association(slug="club", name="Club")
    starts = (utcnow() + timedelta(days=9)).replace(hour=12, minute=0, second=0, microsecond=0)
    return {slug: await factories.event(association_id=association_id, slug=slug, title=f"Event {slug}",
                                             starts_at=starts, status=status)
            for slug, status in STATUSES.items()}, starts


def test_the_owner_draws_the_line_the_consumers_are_checked_against():
    assert {status.value for status in EventStatus if visibility.is_published(status)} == PUBLISHED
    assert {status.value for status in EventStatus if visibility.goes_ahead(status)} == {"approved"}


async def test_every_public_page_and_feed_shows_exactly_the_published_events(one_per_status):
    _events, starts = one_per_status
    client = AsyncClient()
    monday = (starts - timedelta(days=starts.weekday())).date()
    lists = {
        "home": "/", "association": "/associations/club/", "week calendar": f"/calendar/week/?week={monday}",
        "month calendar": f"/calendar/?month={starts:%Y-%m}",
    }
    for name, url in lists.items():
        page = (await client.get(url)).content.decode()
        assert {slug for slug in STATUSES if f'href="/events/{slug}/"' in page} == PUBLISHED, name
    feed = (await client.get("/feeds/events.ics")).content.decode()
    assert {slug for slug in STATUSES if f"Event {slug}" in feed} == PUBLISHED
    for slug in STATUSES:
        expected = 200 if slug in PUBLISHED else 404
        assert (await client.get(f"/events/{slug}/")).status_code == expected, slug
        assert (await client.get(f"/events/{slug}.ics")).status_code == expected, slug
        assert (await client.get(f"/events/{slug}/seats/")).status_code == expected, slug


async def test_only_the_event_that_goes_ahead_offers_seats_and_takes_registrations(one_per_status):
    events, _starts = one_per_status
    client = AsyncClient()
    assert {slug for slug in STATUSES if slug in _pages.slugs_listed(
        (await client.get("/?has_seats=on")).content.decode())} == {"approved"}
    staff_id = await factories.user(email="staff@etu.test", display_name="Staff", is_staff=True)
    staff = Actor(id=staff_id, is_staff=True)
    taken = set()
    for slug, event_id in events.items():
        student = await factories.user(email=f"{slug}@etu.test", display_name=slug)
        async with db.write_session() as session:
            try:
                await registration_services.registration_create(session, event_id=event_id, user_id=student)
                taken.add(slug)
            except registration_services.RegistrationClosed:
                pass
        added = await factories.user(email=f"added-{slug}@etu.test", display_name=slug)
        async with db.write_session() as session:
            try:
                await staff_people.attendee_add(session, actor=staff, event_id=event_id,
                                                email=f"added-{slug}@etu.test")
            except registration_services.RegistrationClosed:
                assert slug != "approved"
            else:
                assert slug == "approved", added
    assert taken == {"approved"}


async def test_only_the_event_that_goes_ahead_gets_its_reminders_sent(one_per_status, smtp):
    """The e-mail consumer: a reminder due for an event that no longer goes ahead is dropped when it is due."""
    events, _starts = one_per_status
    for slug, event_id in events.items():
        student = await factories.user(email=f"{slug}@etu.test", display_name=slug)
        # raw: a confirmed student at an event in every status (only an approved event takes registrations),
        # and a reminder due now (the services arm it for the day before).
        await support.registration_create_raw(event_id=event_id, user_id=student)
        async with db.write_session() as session, session.begin():
            await outbox.notify(session, kind="event.reminder", recipient_ids=[student], event_id=event_id)
    report = await mailer.send_all_due()
    assert [message["To"] for message in smtp.inbox.messages] == ["approved <approved@etu.test>"]
    assert report.sent == 1 and report.dropped == len(events) - 1


async def test_the_management_area_offers_attendees_for_the_published_events_only(one_per_status):
    events, _starts = one_per_status
    client = AsyncClient()
    await support.login(client, await factories.user(email="staff@etu.test", display_name="Staff",
                                                          is_staff=True))
    for slug, event_id in events.items():
        page = (await client.get(f"/manage/events/{event_id}/")).content.decode()
        assert (f'href="/manage/events/{event_id}/attendees/"' in page) is (slug in PUBLISHED), slug
