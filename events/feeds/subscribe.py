"""Calendar subscription in one tap: for a feed, the ``webcal://`` address (calendar apps on phones and
desktops open it and subscribe), and the pages of Google Calendar and Outlook.com that subscribe to it; for
one event, their pages that add it. Links only: nothing is sent anywhere until the student follows one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urlencode

from markupsafe import Markup, escape

from events.catalog.share import absolute_url


@dataclass(frozen=True, slots=True)
class FeedLinks:
    https: str  # the feed's address, to copy into any calendar application
    webcal: str
    google: str
    outlook: str


def feed_links(path: str, *, name: str) -> FeedLinks:
    """The subscription links of the feed at ``path`` (its name shown by Outlook)."""
    https = absolute_url(path) if path.startswith("/") else path
    webcal = "webcal://" + https.split("://", 1)[1]
    return FeedLinks(
        https=https,
        webcal=webcal,
        # Google subscribes to a cid given as a webcal:// address; Outlook.com adds a calendar "from the web".
        google="https://calendar.google.com/calendar/render?" + urlencode({"cid": webcal}),
        outlook="https://outlook.live.com/calendar/0/addfromweb?" + urlencode({"url": https, "name": name}),
    )


@dataclass(frozen=True, slots=True)
class EventLinks:
    google: Markup  # escaped for an HTML attribute once, when made (every event page shows them)
    outlook: Markup


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@lru_cache(maxsize=2048)  # every event page shows them: kept per process by what they say
def event_links(*, title: str, starts_at: datetime, ends_at: datetime, location: str, page: str) -> EventLinks:
    """The pages of Google Calendar and Outlook.com that add one event (its page's address as details)."""
    google_dates = f"{_utc(starts_at):%Y%m%dT%H%M%SZ}/{_utc(ends_at):%Y%m%dT%H%M%SZ}"
    return EventLinks(
        google=escape("https://calendar.google.com/calendar/render?" + urlencode({
            "action": "TEMPLATE", "text": title, "dates": google_dates, "location": location,
            "details": absolute_url(page)})),
        outlook=escape("https://outlook.live.com/calendar/0/deeplink/compose?" + urlencode({
            "path": "/calendar/action/compose", "rru": "addevent", "subject": title,
            "startdt": _utc(starts_at).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "enddt": _utc(ends_at).strftime("%Y-%m-%dT%H:%M:%SZ"), "location": location,
            "body": absolute_url(page)})),
    )
