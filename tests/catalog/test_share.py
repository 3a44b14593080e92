"""Share previews: a link to a public page shared in a group chat or found by a search engine shows its
title, a description (for an event: when, where, who), its canonical address, and for an event the
schema.org data, cancelled when it is; nothing an organiser types can break out of the tags."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from html import unescape

from events.localtime import site_zone
from tests import factories, support

SITE = "http://127.0.0.1:8000"  # settings.SITE_URL in the tests' settings


def meta(page: str, key: str) -> str | None:
    found = re.search(rf'<meta (?:name|property)="{re.escape(key)}" content="([^"]*)">', page)
    return None if found is None else unescape(found.group(1))


def structured(page: str) -> dict:
    (data,) = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    return json.loads(data)


async def test_an_event_page_says_what_when_where_and_who_to_chat_apps_and_search_engines():
    organiser = await factories.association(slug="bde", name="BDE Hyperion")
    starts = datetime(2030, 5, 17, 20, 0, tzinfo=site_zone())
    await factories.event(association_id=organiser, slug="gala", title="Gala d'été", starts_at=starts,
                          location="Grand Hall", capacity=120)
    page = await support.visitor_page("/events/gala/")
    assert meta(page, "og:title") == "Gala d'été" and meta(page, "twitter:title") == "Gala d'été"
    description = meta(page, "og:description")
    assert description == meta(page, "description") == meta(page, "twitter:description")
    assert "17 May 2030" in description and "Grand Hall" in description and "BDE Hyperion" in description
    assert meta(page, "og:url") == f"{SITE}/events/gala/"
    assert f'<link rel="canonical" href="{SITE}/events/gala/">' in page
    data = structured(page)
    assert (data["@type"], data["name"], data["eventStatus"]) == ("Event", "Gala d'été",
                                                                   "https://schema.org/EventScheduled")
    assert data["startDate"] == "2030-05-17T20:00:00+02:00" and data["location"]["name"] == "Grand Hall"
    assert data["organizer"] == {"@type": "Organization", "name": "BDE Hyperion",
                                 "url": f"{SITE}/associations/bde/"}
    assert (data["maximumAttendeeCapacity"], data["remainingAttendeeCapacity"]) == (120, 120)


async def test_a_cancelled_event_says_so_in_its_structured_data():
    organiser = await factories.association()
    event_id = await factories.event(association_id=organiser, slug="rallye", title="Rallye",
                                     starts_at=datetime.now(site_zone()) + timedelta(days=3))
    await factories.event_transition(event_id=event_id, action="cancel")
    assert structured(await support.visitor_page("/events/rallye/"))["eventStatus"] == "https://schema.org/EventCancelled"


async def test_what_organisers_type_cannot_break_out_of_the_tags():
    organiser = await factories.association(slug="bde", name='BDE "<b>quoted</b>"')
    hostile = '</script><script>alert(1)</script>" onload="x'
    await factories.event(association_id=organiser, slug="gala", title=hostile, location="<img src=x>")
    page = await support.visitor_page("/events/gala/")
    assert "<script>alert(1)" not in page and "<img src=x>" not in page
    assert structured(page)["name"] == hostile  # the data is intact once parsed
    assert meta(page, "og:title") == hostile
    assert 'onload="x' not in page


async def test_every_public_page_has_a_description_and_its_canonical_address():
    organiser = await factories.association(slug="bde", name="BDE", description="Le bureau des élèves.")
    await factories.event(association_id=organiser, slug="gala", title="Gala")
    home = await support.visitor_page("/")
    assert "register in one click" in meta(home, "description")
    assert meta(home, "og:url") == f"{SITE}/" and meta(home, "og:type") == "website"
    association = await support.visitor_page("/associations/bde/")
    assert meta(association, "description") == "Le bureau des élèves."
    assert meta(association, "og:url") == f"{SITE}/associations/bde/"
    calendar = await support.visitor_page("/calendar/")
    assert meta(calendar, "og:title").startswith("Calendar")


async def test_only_the_visitors_render_carries_them_the_one_chat_apps_and_search_engines_fetch():
    organiser = await factories.association()
    await factories.event(association_id=organiser, slug="gala", title="Gala")
    student = await factories.user(email="lea@etu.test")
    page = (await (await support.client_as(student)).get("/events/gala/")).content.decode()
    assert "Gala" in page and meta(page, "og:title") is None and "application/ld+json" not in page
