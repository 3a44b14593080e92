"""Every list of events tells the day of each event, and an event that took place says so instead of
offering seats."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import AsyncClient
from django.urls import reverse

from events.models import RegistrationStatus, utcnow
from tests import factories, support

PARIS = ZoneInfo("Europe/Paris")


def _next_january_the_15th() -> datetime:
    today = utcnow().astimezone(PARIS)
    return datetime(today.year + 1, 1, 15, 12, 30, tzinfo=PARIS)


async def _student_client(user_id: int, language: str = "fr") -> AsyncClient:
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    await support.login(client, user_id)
    return client


# Each page that lists events, with the URL that lists the January event (calendars: its week).
def _list_pages(start: datetime) -> dict[str, str]:
    monday = (start - timedelta(days=start.weekday())).date()
    return {
        "home": reverse("home"),
        "search": reverse("home") + "?q=theatre",
        "association": reverse("association_detail", args=["theatre"]),
        "my events": reverse("my_events"),
        "week calendar": reverse("calendar_week") + f"?week={monday.isoformat()}",
    }


@pytest.mark.parametrize("page", ["home", "search", "association", "my events", "week calendar"])
async def test_every_list_of_events_shows_the_day_of_each_event(page):
    association_id = await factories.association(slug="theatre", name="Club théâtre")
    start = _next_january_the_15th()
    event_id = await factories.event(association_id=association_id, slug="atelier", title="Atelier théâtre",
                                          starts_at=start, hours=4)
    student = await factories.user()
    await factories.registration(event_id=event_id, user_id=student)
    client = await _student_client(student)

    response = await client.get(_list_pages(start)[page])

    assert response.status_code == 200
    text = response.text
    assert "Atelier théâtre" in text
    assert "12:30 – 16:30" in text
    assert "15 janvier" in text, f"the {page} page lists the event without its day"


async def test_a_past_event_says_it_is_over_not_full_in_lists_and_on_its_page():
    association_id = await factories.association(slug="theatre", name="Club théâtre")
    past_start = utcnow() - timedelta(days=10)
    event_id = await factories.event(association_id=association_id, slug="passe", title="Spectacle passé",
                                          starts_at=past_start, capacity=1)
    student = await factories.user()
    other = await factories.user(email="bob@etu.test", display_name="Bob")
    # raw: an event in the past, which registration refuses
    await support.registration_create_raw(event_id=event_id, user_id=student)
    await support.registration_create_raw(event_id=event_id, user_id=other, status=RegistrationStatus.WAITLISTED)
    client = await _student_client(student, language="en")

    for url in (reverse("association_detail", args=["theatre"]), reverse("my_events"),
                reverse("event_detail", args=["passe"])):
        text = (await client.get(url)).text
        assert "Spectacle passé" in text, url
        assert "Full, waitlist open" not in text, url
        assert "Event over" in text, url
    detail = (await client.get(reverse("event_detail", args=["passe"]))).text
    assert "This event is over." in detail
    assert "live-seats.js" not in detail  # no live counter to turn it back into seats


async def test_before_registration_opens_the_event_page_shows_no_empty_registration_box():
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="gala",
                               registration_opens_at=utcnow() + timedelta(days=2))
    student = await factories.user()
    client = await _student_client(student, language="en")
    text = (await client.get(reverse("event_detail", args=["gala"]))).text
    assert "Registration opens on" in text
    assert 'class="my-state"' not in text
    assert "/register/" not in text
