"""What a shared link shows: the absolute address of a page, a one-line description, and an event's
schema.org data, so that chat apps (Open Graph, Twitter cards) and search engines present the pages
properly. The templates put them in the head (templates/base.html; the event page adds its own).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.urls import reverse
from markupsafe import Markup

from events.catalog.queries import EventDetail
from events.localtime import local
from events.rules import visibility
from hyperion.images import ImageRef


def _in_script(text: str) -> str:
    """JSON inside <script>: the three characters that could end the element or open a comment, escaped as
    JSON allows (Django's json_script escapes the same ones; it renders a script of type application/json)."""
    return text.replace("<", "\\u003C").replace(">", "\\u003E").replace("&", "\\u0026")


def absolute_url(path: str) -> str:
    """The page's address as shared: the site's public address (SITE_URL) and the path, no query string. An
    address that is absolute already (an image in an S3-compatible bucket) stays as it is."""
    if path.startswith(("https://", "http://")):
        return path
    return f"{settings.SITE_URL}{path}"


def event_image(detail: EventDetail) -> tuple[ImageRef | None, str]:
    """The event's picture in share previews, with its text alternative: its poster, else its association's
    logo, else none."""
    poster = ImageRef.parse(detail.poster)
    if poster is not None:
        return poster, detail.poster_alt
    logo = ImageRef.parse(detail.logo)
    return (logo, detail.logo_alt) if logo is not None else (None, "")


def event_description(detail: EventDetail, *, when: str, time: str) -> str:
    """One line for a shared link: when, where, who organises it."""
    parts = [f"{when}, {time}" if time else when]
    if detail.location:
        parts.append(detail.location)
    parts.append(detail.association_name)
    return " · ".join(parts)


def event_structured_data(detail: EventDetail, *, description: str) -> Markup:
    """The event as schema.org ``Event`` (JSON-LD), safe to put inside a ``<script>`` element."""
    return _structured_data(detail.slug, detail.title, description, detail.starts_at, detail.ends_at,
                            visibility.is_cancelled(detail.status), detail.location, detail.association_name,
                            detail.association_slug, detail.seats.capacity, detail.seats.seats_left,
                            settings.SITE_URL, event_image(detail)[0])


# Kept per process by what it shows (every student's event page carries it; building it cost ~0.1 ms).
@lru_cache(maxsize=2048)
def _structured_data(slug: str, title: str, description: str, starts_at: datetime, ends_at: datetime,
                     cancelled: bool, location: str, association_name: str, association_slug: str,
                     capacity: int | None, seats_left: int | None, site: str,
                     image: ImageRef | None = None) -> Markup:
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Event",
        "name": title,
        "description": description,
        "startDate": local(starts_at).isoformat(),
        "endDate": local(ends_at).isoformat(),
        "eventStatus": "https://schema.org/EventCancelled" if cancelled else "https://schema.org/EventScheduled",
        "eventAttendanceMode": "https://schema.org/OfflineEventAttendanceMode",
        "url": site + reverse("event_detail", args=[slug]),
        "organizer": {"@type": "Organization", "name": association_name,
                      "url": site + reverse("association_detail", args=[association_slug])},
    }
    if location:
        data["location"] = {"@type": "Place", "name": location}
    if image is not None:
        data["image"] = [absolute_url(image.share_url)]
    if capacity is not None:
        data["maximumAttendeeCapacity"] = capacity
        data["remainingAttendeeCapacity"] = seats_left
    return Markup(_in_script(json.dumps(data, ensure_ascii=False)))  # noqa: S704  # nosec B704 - escaped for <script>
