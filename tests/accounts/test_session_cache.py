"""The process's memory of sessions (events/accounts/session_cache.py): a student's pages skip the session
query, and every change that matters to a session is seen at once, in this process and in the others."""

from __future__ import annotations

import asyncio

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
        async with db.write_session() as session, session.begin():
            await session.execute(update(User).where(User.id == user).values(display_name="Changed"))
            raise RuntimeError("the service refused after its write: rolled back")
    assert session_cache.entries == remembered and remembered
    # By hand (as in psql: no site session sees it): at most SESSION_CACHE_SECONDS; with 0, at once.
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


async def test_students_arriving_together_are_read_together_each_as_themselves():
    """An opening's first second: many students not seen lately. Their sessions are read in a few statements,
    not one each, and each request is still its own student's (a batch keyed by position would swap them);
    an ended session among them is nobody's."""
    users = [await factories.user(email=f"s{index}@etu.test", display_name=f"Student {index}")
             for index in range(12)]
    clients = [await _client(user) for user in users]
    ended = AsyncClient()
    ended.cookies[settings.SESSION_COOKIE_NAME] = "a-token-no-session-has-" + "x" * 20
    session_cache.clear()
    with support.engine_events("before_cursor_execute") as statements:
        pages = await asyncio.gather(*(client.get("/me/events/") for client in [*clients, ended]))
    for index, page in enumerate(pages[:-1]):
        assert page.status_code == 200 and f"Student {index}<" in page.text, index
        assert not any(f"Student {other}<" in page.text for other in range(12) if other != index)
    assert pages[-1].status_code == 302  # to the log-in page
    session_reads = [sql for sql in statements if "auth_sessions.token_hash" in sql]
    assert 1 <= len(session_reads) <= 3  # the first alone, then the others together (13 one by one before)
