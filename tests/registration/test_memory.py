"""What a logged-in student's pages keep in memory (events/registration/memory.py): their event pages and My
events without a query, and never a state of theirs that is out of date, nor another student's."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.test import AsyncClient

from events.accounts import auth
from events.accounts.session_cache import session_cache
from events.catalog import queries as catalog_queries
from events.models import EventStatus, utcnow
from events.registration import leaving, memory
from events.registration import queries as registration_queries
from events.registration import services as registration_services
from hyperion import db, pagecache
from tests import factories, support

pytestmark = pytest.mark.usefixtures("cache_on")


async def _client(user_id: int) -> AsyncClient:
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    await support.login(client, user_id)
    return client


async def _statements(request) -> tuple[object, list]:
    with support.engine_events("before_cursor_execute") as statements:
        response = await request
    return response, statements


async def _register(event_id: int, user_id: int):
    async with db.write_session() as session:
        return await registration_services.registration_create(session, event_id=event_id, user_id=user_id)


async def _gala_full_with_noe_waiting() -> tuple[int, int, int, int]:
    """Gala (one seat: Léa's, Noé waits) and Rando (Noé has no registration yet)."""
    association = await factories.association()
    gala = await factories.event(association_id=association, slug="gala", title="Gala", capacity=1)
    rando = await factories.event(association_id=association, slug="rando", title="Rando")
    lea = await factories.user(email="lea@etu.test", display_name="Léa")
    noe = await factories.user(email="noe@etu.test", display_name="Noé")
    await _register(gala, lea)
    await _register(gala, noe)
    return gala, rando, lea, noe


async def test_a_students_pages_seen_again_run_no_query_and_show_their_own_state():
    association = await factories.association()
    gala = await factories.event(association_id=association, slug="gala", title="Gala", capacity=1)
    await factories.event(association_id=association, slug="rando", title="Rando")
    lea = await factories.user(email="lea@etu.test", display_name="Léa")
    noe = await factories.user(email="noe@etu.test", display_name="Noé")
    await _register(gala, lea)
    await _register(gala, noe)  # full: Noé waits
    await support.own_notifications_heard()  # a late one would drop what is kept below
    lea_client, noe_client = await _client(lea), await _client(noe)

    # At most one query per page: the event as she sees it (its shared part kept), then her registrations.
    first, cold = await _statements(lea_client.get("/events/gala/"))
    assert "You are registered" in first.text
    assert len(cold) == 2  # the session, the event with her registration
    _second, second = await _statements(lea_client.get("/events/gala/"))
    assert len(second) == 1  # her registrations, kept from now on
    again, warm = await _statements(lea_client.get("/events/gala/"))
    other, other_statements = await _statements(lea_client.get("/events/rando/"))
    mine, mine_statements = await _statements(lea_client.get("/me/events/"))
    assert (warm, mine_statements) == ([], [])
    assert len(other_statements) == 1  # an event not seen yet: its shared part only
    assert "You are registered" in again.text and "Gala" in mine.text
    assert "You are registered" not in other.text
    # Noé sees the same kept event with his own state, not Léa's.
    noe_page = await noe_client.get("/events/gala/")
    assert "You are on the waitlist, position 1." in noe_page.text and "You are registered" not in noe_page.text


async def test_a_new_registration_and_a_promotion_show_on_the_next_page():
    gala, rando, lea, noe = await _gala_full_with_noe_waiting()
    noe_client = await _client(noe)
    assert "Rando" not in (await noe_client.get("/me/events/")).text
    assert "position 1" in (await noe_client.get("/events/gala/")).text
    await _register(rando, noe)  # an event his kept registrations did not name
    assert "Rando" in (await noe_client.get("/me/events/")).text
    async with db.write_session() as session:
        await leaving.registration_leave(session, event_id=gala, user_id=lea)
    assert "You are registered" in (await noe_client.get("/events/gala/")).text  # promoted


async def test_the_page_after_the_students_own_action_reads_the_database():
    association = await factories.association()
    await factories.event(association_id=association, slug="gala", title="Gala")
    lea = await factories.user(email="lea@etu.test", display_name="Léa")
    client = await _client(lea)
    await client.get("/events/gala/")
    await client.get("/events/gala/")
    client.cookies["messages"] = "a message"  # what the redirect after a registration carries
    _page, statements = await _statements(client.get("/events/gala/"))
    assert len(statements) >= 1


async def test_nothing_is_kept_with_the_store_off(settings):
    settings.PAGE_CACHE_SECONDS = 0
    association = await factories.association()
    await factories.event(association_id=association, slug="gala", title="Gala")
    client = await _client(await factories.user(email="lea@etu.test"))
    await client.get("/events/gala/")
    _page, statements = await _statements(client.get("/events/gala/"))
    assert len(statements) == 1  # the event with her registration (the session is still remembered)
    assert pagecache.stats()["entries"] == 0


@pytest.mark.postgres_only
async def test_another_processs_registration_and_promotion_reach_the_servers_kept_pages(tmp_path):
    """The server keeps Noé's pages; this process (another one) registers him elsewhere, then frees a seat he
    waits for: the server's next pages show both, through PostgreSQL's NOTIFY."""
    gala, rando, lea, noe = await _gala_full_with_noe_waiting()
    async with db.write_session() as session:
        token = await auth.session_create(session, user_id=noe)
    session_cache.clear()
    env = {"PAGE_CACHE_SECONDS": "3600", "PAGE_CACHE_GRACE_SECONDS": "0"}
    with support.uvicorn_server(tmp_path, env=env) as server:
        cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={token}; {settings.LANGUAGE_COOKIE_NAME}=en"}
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20, headers=cookie) as client:
            assert "Rando" not in (await client.get("/me/events/")).text
            assert "position 1" in (await client.get("/events/gala/")).text
            await _register(rando, noe)

            async def rando_listed() -> bool:
                return "Rando" in (await client.get("/me/events/")).text

            await support.until(rando_listed, what="the new registration on the server's My events")
            async with db.write_session() as session:
                await leaving.registration_leave(session, event_id=gala, user_id=lea)

            async def promoted() -> bool:
                return "You are registered" in (await client.get("/events/gala/")).text

            await support.until(promoted, what="the promotion on the server's event page")


async def test_the_kept_overlap_warning_follows_the_same_rule_as_the_query():
    """Overlaps from the student's kept registrations (the registration form's warning without a query) name
    the same events as queries.confirmed_overlaps: confirmed, going ahead, another event, overlapping (an event
    that ends when the other starts does not overlap), soonest first."""
    association = await factories.association()
    start = utcnow().replace(microsecond=0) + timedelta(days=3)
    await factories.event(association_id=association, slug="new", title="New", starts_at=start, hours=2)
    shapes = {  # title: (starts after `start`, hours, registered as)
        "Before": (-3, 4, "confirmed"), "Inside": (1, 0.5, "confirmed"), "Around": (-1, 5, "confirmed"),
        "Touching": (2, 1, "confirmed"), "Waiting": (0, 1, "waitlisted"), "Left": (0, 1, "left"),
        "Cancelled": (0, 1, "cancelled event"), "Apart": (5, 1, "confirmed"),
    }
    lea, noe = await factories.user(email="lea@etu.test"), await factories.user(email="noe@etu.test")
    for index, (title, (offset, hours, how)) in enumerate(shapes.items()):
        event_id = await factories.event(association_id=association, slug=f"e{index}", title=title,
                                         starts_at=start + timedelta(hours=offset), hours=hours, capacity=1)
        if how == "waitlisted":
            await _register(event_id, noe)  # the one seat
        await _register(event_id, lea)
        if how == "left":
            async with db.write_session() as session:
                await leaving.registration_leave(session, event_id=event_id, user_id=lea)
        if how == "cancelled event":
            await factories.event_transition(event_id=event_id, action="cancel")
    await support.own_notifications_heard()  # a late one would drop what is kept below
    assert await memory.my_registrations(lea)  # kept now
    async with db.read_connection() as connection:
        detail = await catalog_queries.event_detail(connection, slug="new", viewer_id=None)
        from_sql = await registration_queries.confirmed_overlaps(connection, user_id=lea, slug="new")
    assert from_sql == ["Before", "Around", "Inside"]
    await factories.event(association_id=association, slug="draft", status=EventStatus.DRAFT)
    async with db.read_connection() as connection:  # no published event: nothing to register for
        for slug in ("draft", "nope"):
            assert await registration_queries.confirmed_overlaps(connection, user_id=lea, slug=slug) is None
    assert memory.kept_overlaps(lea, detail) == from_sql
    # A registration asked for without confirming is checked by the same rule under the event's lock, and
    # nothing is written until she confirms.
    async with db.write_session() as session:
        with pytest.raises(registration_services.OverlapsToConfirm) as refused:
            await registration_services.registration_create(session, slug="new", user_id=lea, check_overlaps=True)
    assert refused.value.titles == from_sql
    assert "new" not in {row.event.slug for row in await memory.my_registrations(lea, fresh=True)}
    await factories.event(association_id=association, slug="later", starts_at=start + timedelta(days=9))
    async with db.write_session() as session:  # without overlaps, the same check registers at once
        outcome = await registration_services.registration_create(session, slug="later", user_id=lea,
                                                                   check_overlaps=True)
    assert outcome.status == "confirmed"
