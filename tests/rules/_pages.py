"""What the consumers of a rule show, read the way a visitor reads them: the card of an event in a list,
the event page's counter and button, the live counter's first frame."""

from __future__ import annotations

import json
import re

from django.test import AsyncClient

from tests import factories, support


def card(page: str, slug: str) -> str:
    """The list card of the event ``slug`` in a list page."""
    for item in page.split('<li class="event-card')[1:]:
        if f'href="/events/{slug}/"' in item:
            return item.split("</li>")[0]
    raise AssertionError(f"no card for {slug} in the list")


def slugs_listed(page: str) -> set[str]:
    return set(re.findall(r'<h3 class="event-title"><a href="/events/([^/"]+)/"', page))


def card_says_full(page: str, slug: str) -> bool:
    return 'event-seats is-full"' in card(page, slug)


def counter_says_full(page: str) -> bool:
    """The event page's seat counter (the attribute the live script keeps up to date)."""
    found = re.search(r'class="live-seats"[^>]*data-full="(true|false)"', page)
    assert found, "the event page has no live counter"
    return found.group(1) == "true"


def register_button(page: str, slug: str) -> bool:
    """The page offers to register now: the form is there and its button is not waiting for the opening
    (a countdown's button is disabled until then)."""
    start = page.find(f'action="/events/{slug}/register/"')
    if start < 0:
        return False
    form = page[start:page.find("</form>", start)]
    return "disabled" not in form


async def first_live_frame(client: AsyncClient, slug: str) -> dict:
    """The first value the live counter's stream sends for ``slug``."""
    response = await client.get(f"/events/{slug}/seats/")
    chunks = response.streaming_content.__aiter__()
    received = ""
    while "data: " not in received or not received.rstrip(" ").endswith("\n\n"):
        received += (await anext(chunks)).decode()
    line = next(line for line in received.splitlines() if line.startswith("data: "))
    return json.loads(line[len("data: "):])


async def student_client(email: str = "student@etu.test") -> tuple[AsyncClient, int]:
    user_id = await factories.user(email=email, display_name="Student")
    client = AsyncClient()
    await support.login(client, user_id)
    return client, user_id
