"""How many statements each page a logged-in student uses sends, pinned: the benchmark's figures rest on them
(bench/README.md), and a statement that slips into a hot page shows here first, on both databases.

Production's configuration: the page store on, the session remembered after the first page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import AsyncClient

from events.accounts import services as account_services
from events.models import utcnow
from events.views import feeds as feed_views
from hyperion import db, pagecache
from tests import factories, support

pytestmark = pytest.mark.usefixtures("cache_on")


async def _sent(client: AsyncClient, method: str, path: str, **data) -> list[str]:
    with support.engine_events("before_cursor_execute") as statements:
        response = await getattr(client, method)(path, data or None)
    assert response.status_code in (200, 302), (path, response.status_code)
    return [statement.split()[0] for statement in statements]


@pytest.fixture
async def student():
    association = await factories.association()
    await factories.event(association_id=association, slug="gala", title="Gala")
    await factories.event(association_id=association, slug="rando", title="Rando", capacity=None,
                          starts_at=utcnow() + timedelta(days=20))
    user_id = await factories.user(email="lea@etu.test", display_name="Léa")
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    await support.login(client, user_id)
    async with db.write_session() as session:
        token = (await account_services.feed_token_regenerate(session, user_id=user_id)).token
    await support.own_notifications_heard()  # a late one would drop what the counts below rely on
    return client, token


async def test_a_students_pages_seen_before_send_no_statement(student):
    client, token = student
    for path in ("/", "/calendar/", "/events/gala/", "/me/events/"):
        await client.get(path)
    for path in ("/", "/calendar/", "/events/gala/", "/me/events/"):
        assert await _sent(client, "get", path) == [], path


async def test_a_students_first_pages(student):
    client, token = student
    # The first page of the session: who the session is, then the page.
    assert await _sent(client, "get", "/events/gala/") == ["SELECT"] * 2  # session, the event as she sees it
    assert await _sent(client, "get", "/events/rando/") == ["SELECT"]  # the same for another event
    assert await _sent(client, "get", "/me/events/") == ["SELECT"]  # her registrations, kept from now on
    assert await _sent(client, "get", "/events/gala/") == []
    assert len(await _sent(client, "get", "/")) == 2  # the list and the associations of the filter, once


async def test_the_personal_feed_reads_its_owner_and_last_change_at_once(student):
    _client, token = student
    client = AsyncClient()  # a calendar application: the address's token, no cookie
    feed_views._built.clear()  # feeds built by earlier tests, whose ids this database gives again
    assert len(await _sent(client, "get", f"/feeds/me/{token}.ics")) == 2  # owner with last change, rows
    assert len(await _sent(client, "get", f"/feeds/me/{token}.ics")) == 1  # built: owner with last change


async def test_a_registration_is_one_transaction(student):
    client, _token = student
    await client.get("/events/gala/")  # the event kept,
    await client.get("/me/events/")  # and her registrations: nothing read before the lock
    sent = await _sent(client, "post", "/events/gala/register/")
    # One transaction: the event locked, the seats, her earlier registration and (when not confirmed over a
    # warning) her overlapping events read at once, the registration and its confirmation e-mail written, the
    # news for the live counters and the caches sent: on PostgreSQL the writes and the news are one statement
    # (SQLite's explicit BEGIN IMMEDIATE aside).
    one_transaction = ["SELECT", "SELECT", "WITH"] if not db.is_sqlite(db.get_engine()) else \
        ["SELECT", "SELECT", "INSERT", "INSERT", "SELECT"]
    assert [verb for verb in sent if verb != "BEGIN"] == one_transaction
    # Not kept (another process served her last page): the overlap check is in the statement of the seats.
    await client.get("/events/rando/")
    pagecache.clear()
    sent = await _sent(client, "post", "/events/rando/register/")
    assert [verb for verb in sent if verb != "BEGIN"] == one_transaction
    # Confirmed from the overlap page: nothing read before the lock, even with nothing kept.
    await factories.event(association_id=await factories.association(slug="bds", name="BDS"), slug="match",
                          capacity=None, starts_at=utcnow() + timedelta(days=30))
    pagecache.clear()
    sent = await _sent(client, "post", "/events/match/register/", confirm_overlap="yes")
    assert [verb for verb in sent if verb != "BEGIN"] == one_transaction
