"""Calendar subscription in one tap: the personal feed and each association's feed offer the webcal://
address, Google Calendar's and Outlook.com's subscribe pages and a copy button; an event offers the pages
that add it to Google Calendar and Outlook.com, at its time in UTC."""

from __future__ import annotations

import re
from datetime import datetime
from html import unescape
from urllib.parse import parse_qs, urlsplit

from events.feeds import subscribe
from events.localtime import site_zone
from tests import factories, support

SITE = "http://127.0.0.1:8000"


def query_of(link: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(link).query).items()}


def links_in(page: str, host: str) -> list[str]:
    return [unescape(link) for link in re.findall(rf'href="(https://{re.escape(host)}[^"]*)"', page)]


def test_a_feeds_links_name_the_same_address_in_each_form():
    links = subscribe.feed_links("/feeds/associations/bde.ics", name="BDE")
    assert links.https == f"{SITE}/feeds/associations/bde.ics"
    assert links.webcal == "webcal://127.0.0.1:8000/feeds/associations/bde.ics"
    assert query_of(links.google) == {"cid": links.webcal}
    assert query_of(links.outlook) == {"url": links.https, "name": "BDE"}


async def test_the_personal_feed_is_offered_in_one_tap_when_it_is_made():
    student = await factories.user(email="lea@etu.test")
    client = await support.client_as(student)
    page = (await client.post("/account/feed/", {"action": "regenerate"})).content.decode()
    (webcal,) = re.findall(r'href="(webcal://[^"]+)"', page)
    assert re.fullmatch(r"webcal://testserver/feeds/me/[\w-]+\.ics", webcal)  # the address it was asked at
    (google,) = links_in(page, "calendar.google.com")
    assert query_of(google)["cid"] == webcal
    (outlook,) = links_in(page, "outlook.live.com")
    assert query_of(outlook)["url"] == webcal.replace("webcal://", "http://")
    assert 'data-copy="feed-url"' in page and "js/copy.js" in page


async def test_an_associations_page_offers_its_feed_and_an_event_page_adds_the_event():
    organiser = await factories.association(slug="bde", name="BDE")
    starts = datetime(2030, 5, 17, 20, 0, tzinfo=site_zone())
    await factories.event(association_id=organiser, slug="gala", title="Gala", starts_at=starts, hours=3,
                          location="Grand Hall")
    client = await support.client_as(await factories.user(email="lea@etu.test"))
    association = (await client.get("/associations/bde/")).content.decode()
    assert 'href="webcal://127.0.0.1:8000/feeds/associations/bde.ics"' in association
    event = (await client.get("/events/gala/")).content.decode()
    (google,) = links_in(event, "calendar.google.com")
    assert query_of(google) == {"action": "TEMPLATE", "text": "Gala", "dates": "20300517T180000Z/20300517T210000Z",
                                "location": "Grand Hall", "details": f"{SITE}/events/gala/"}
    (outlook,) = links_in(event, "outlook.live.com")
    assert (query_of(outlook)["startdt"], query_of(outlook)["subject"]) == ("2030-05-17T18:00:00Z", "Gala")
