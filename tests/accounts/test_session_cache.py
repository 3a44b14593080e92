"""The process's memory of sessions (events/accounts/session_cache.py): a student's pages skip the session
query, and every change that matters to a session is seen at once, in this process and in the others."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

import httpx
import pytest
from django.conf import settings
from django.test import AsyncClient
from sqlalchemy import update

from events.accounts import auth
from events.accounts.session_cache import session_cache
from events.models import Role, User
from events.staff import people
from hyperion import db
from tests import factories, support

MANAGE = 'href="/manage/"'


async def _client(user_id: int) -> AsyncClient:
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    await support.login(client, user_id)
    return client


async def test_a_students_next_pages_take_no_connection_for_the_session():
    user = await factories.user(email="lea@etu.test", display_name="Léa")
    client = await _client(user)
    session_cache.clear()
    with support.engine_events("checkout") as taken:
        first = await client.get("/healthz")
    assert len(taken) == 1  # the session lookup
    with support.engine_events("checkout") as taken:
        again = await client.get("/healthz")
        page = await client.get("/me/events/")
    assert first.status_code == again.status_code == 200
    assert page.status_code == 200 and "Léa" in page.text
    assert len(taken) == 1  # My events' own query; no session lookup for either request


async def test_a_log_out_ends_the_remembered_session_at_once():
    user = await factories.user(email="lea@etu.test", display_name="Léa")
    client = await _client(user)
    token = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert (await client.get("/me/events/")).status_code == 200  # now remembered
    copied = AsyncClient()
    copied.cookies[settings.SESSION_COOKIE_NAME] = token
    assert (await copied.get("/me/events/")).status_code == 200
    await client.post("/account/logout/")
    assert (await copied.get("/me/events/")).status_code == 302  # the copied cookie is refused at once


async def test_a_deactivated_account_and_a_new_role_are_seen_on_the_next_page():
    association = await factories.association()
    user = await factories.user(email="lea@etu.test", display_name="Léa")
    client = await _client(user)
    assert MANAGE not in (await client.get("/me/events/")).text
    await factories.member(association_id=association, user_id=user, role=Role.EDITOR)  # role_set: ORM add
    assert MANAGE in (await client.get("/me/events/")).text
    async with db.write_session() as session:  # the staff form's service: an attribute change in the unit of work
        await people.user_staff_set(session, actor=factories.SET_UP, user_id=user, is_staff=False, is_active=False)
    assert (await client.get("/me/events/")).status_code == 302


async def test_a_failed_write_forgets_nothing_and_a_change_by_hand_waits_for_the_bound(settings):
    user = await factories.user(email="lea@etu.test", display_name="Léa")
    client = await _client(user)
    assert "Léa" in (await client.get("/me/events/")).text
    remembered = dict(session_cache.entries)
    with pytest.raises(RuntimeError):
        async with db.write_session() as session, session.begin():  # raw: a write that fails and rolls back
            await session.execute(update(User).where(User.id == user).values(display_name="Changed"))
            raise RuntimeError("the service refused after its write: rolled back")
    assert session_cache.entries == remembered and remembered
    # By hand (as in psql: no site session sees it): at most SESSION_CACHE_SECONDS; with 0, at once.
    # raw: the change by hand is what this test is about.
    async with db.get_engine().begin() as connection:
        await connection.execute(update(User.__table__).where(User.__table__.c.id == user).values(
            display_name="Renamed"))
    settings.SESSION_CACHE_SECONDS = 0
    session_cache.clear()
    assert "Renamed" in (await client.get("/me/events/")).text
    assert session_cache.entries == {}


@pytest.mark.postgres_only
async def test_another_process_hears_a_log_out_and_a_new_role_at_once(tmp_path):
    """The server remembers the student's session; this process (another one) ends it and grants a role: the
    server learns both through PostgreSQL's NOTIFY, with no wait for the memory's time bound."""
    association = await factories.association()
    user = await factories.user(email="lea@etu.test", display_name="Léa")
    async with db.write_session() as session:
        token = await auth.session_create(session, user_id=user)
    other = await factories.user(email="noe@etu.test", display_name="Noé")
    async with db.write_session() as session:
        other_token = await auth.session_create(session, user_id=other)
    # A bound far longer than the test: only the notification can make the server forget.
    with support.uvicorn_server(tmp_path, env={"SESSION_CACHE_SECONDS": "3600"}) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            cookies = f"{settings.SESSION_COOKIE_NAME}={token}; {settings.LANGUAGE_COOKIE_NAME}=en"
            other_cookies = f"{settings.SESSION_COOKIE_NAME}={other_token}; {settings.LANGUAGE_COOKIE_NAME}=en"

            async def page(jar: str) -> httpx.Response:
                client.cookies.clear()
                return await client.get("/me/events/", headers={"Cookie": jar})

            first = await page(other_cookies)
            assert first.status_code == 200 and MANAGE not in first.text
            assert (await page(cookies)).status_code == 200

            await factories.member(association_id=association, user_id=other, role=Role.EDITOR)

            async def manage_link_shown() -> bool:
                return MANAGE in (await page(other_cookies)).text

            await support.until(manage_link_shown, what="the other process's new role on the next page")
            async with db.write_session() as session:
                await auth.sessions_end_for_user(session, user_id=user)

            async def logged_out() -> bool:
                return (await page(cookies)).status_code == 302

            await support.until(logged_out, what="the session ended by another process refused")


async def test_students_arriving_together_are_read_together_each_as_themselves(settings, monkeypatch):
    """An opening's first second: many students not seen lately. While a session read is in flight, the
    lookups that arrive wait and are read together by the next statement, not one each; and each lookup gets
    its own student's row (a batch keyed by position would swap them); an unknown token gets none."""
    settings.SESSION_READS_AT_ONCE = 1
    settings.SESSION_READS_PATIENCE = 3600  # a quick database: however long this machine takes, they wait
    users = [await factories.user(email=f"s{index}@etu.test", display_name=f"Student {index}")
             for index in range(12)]
    tokens = [await support.login(SimpleNamespace(cookies={}), user) for user in users]
    tokens.append("a-token-no-session-has-" + "x" * 20)
    # The first read stays in flight until every other lookup waits: they arrive together.
    opened, everyone_waits, held = db.read_connection, asyncio.Event(), []

    @contextlib.asynccontextmanager
    async def first_held():
        if not held:
            held.append(True)
            await everyone_waits.wait()
        async with opened() as connection:
            yield connection

    monkeypatch.setattr(db, "read_connection", first_held)
    reads = auth.SessionReads()
    with support.engine_events("before_cursor_execute") as statements:
        lookups = [asyncio.ensure_future(reads.row_for(auth._token_hash(tokens[0])))]
        await support.until(lambda: bool(held), what="the first read in flight")
        lookups += [asyncio.ensure_future(reads.row_for(auth._token_hash(token))) for token in tokens[1:]]
        await support.until(lambda: sum(map(len, reads.waiting.values())) == 12,
                            what="the twelve other lookups waiting")
        everyone_waits.set()
        rows = await asyncio.gather(*lookups)
    assert [row.id if row else None for row in rows] == [*users, None]
    assert [row.display_name for row in rows[:-1]] == [f"Student {index}" for index in range(12)]
    assert len(statements) == 2  # the first alone, then the twelve others together (13 one by one before)


async def test_a_lookup_does_not_wait_behind_a_read_slower_than_the_patience(settings, monkeypatch):
    """A distant or overloaded database: the read in flight has been running longer than SESSION_READS_PATIENCE,
    so a new lookup reads on its own rather than waiting for it to finish (the benchmark's +100 ms scenario:
    waiting made the median ten times longer)."""
    settings.SESSION_READS_AT_ONCE = 1
    settings.SESSION_READS_PATIENCE = 0  # any read in flight counts as slow
    first, second = (await factories.user(email="a@etu.test", display_name="A"),
                     await factories.user(email="b@etu.test", display_name="B"))
    tokens = [await support.login(SimpleNamespace(cookies={}), user) for user in (first, second)]
    opened, release, held = db.read_connection, asyncio.Event(), []

    @contextlib.asynccontextmanager
    async def first_held():
        if not held:
            held.append(True)
            await release.wait()  # the first read never gets its answer until the test says so
        async with opened() as connection:
            yield connection

    monkeypatch.setattr(db, "read_connection", first_held)
    reads = auth.SessionReads()
    slow = asyncio.ensure_future(reads.row_for(auth._token_hash(tokens[0])))
    await support.until(lambda: bool(held), what="the first read in flight")
    async with asyncio.timeout(support.EVENT_WITHIN):  # without its own read it would wait for ever
        row = await reads.row_for(auth._token_hash(tokens[1]))  # answered while the first is still held
    assert row.id == second and not slow.done()
    release.set()
    assert (await slow).id == first
