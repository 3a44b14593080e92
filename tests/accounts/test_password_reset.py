"""Forgot password: the same answer for any address, a link that works once and expires, every session ended,
and the way back in for an owner locked out by failed log-ins."""

from __future__ import annotations

import time

from django.conf import settings
from django.test import AsyncClient
from sqlalchemy import func, select

from events.accounts import auth, tokens
from events.accounts import queries as account_queries
from events.models import AuthSession, OutboxMessage, User
from hyperion import db
from tests import factories, support
from tests.accounts.mailbox import link_sent_to, sent

OLD, NEW = "correct-horse-battery", "a-brand-new-passphrase"


async def _account(email: str = "bob@etu.test", *, verified: bool = True) -> int:
    return await factories.user(email=email, display_name="Bob", verified=verified,
                                     password_hash=await auth.password_hash(OLD))


def _body(response) -> str:
    """The page without what differs between any two answers (the CSRF token)."""
    import re

    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


async def test_the_form_answers_the_same_for_a_known_and_an_unknown_address(async_client, session):
    await _account()
    page = await async_client.get("/account/login/", headers={"Accept-Language": "en"})
    assert 'href="/account/password/forgot/"' in page.text and "Forgot your password?" in page.text
    known = await async_client.post("/account/password/forgot/", {"email": "bob@etu.test"})
    unknown = await async_client.post("/account/password/forgot/", {"email": "bib@etu.test"})
    assert known.status_code == unknown.status_code == 200
    assert _body(known).replace("bob@", "bib@") == _body(unknown)
    messages = await sent()
    assert [message["To"] for message in messages] == ["Bob <bob@etu.test>"]
    assert "/account/reset/" in messages[0].get_body(preferencelist=("plain",)).get_content()
    # The link is made when the e-mail is built: the outbox keeps nothing that opens the account.
    assert (await session.execute(select(OutboxMessage.payload))).scalar_one() == {}


async def test_the_link_sets_a_new_password_once_and_ends_every_session(async_client, session):
    user_id = await _account(verified=False)
    other_browser = AsyncClient()
    await support.login(other_browser, user_id)
    await async_client.post("/account/password/forgot/", {"email": "bob@etu.test"})
    link = await link_sent_to("bob@etu.test", "/account/reset/")
    form = await async_client.get(link)
    assert form.status_code == 200 and 'name="new_password1"' in form.text
    weak = await async_client.post(link, {"new_password1": "1234567890", "new_password2": "1234567890"},
                                   headers={"Accept-Language": "en"})
    assert weak.status_code == 400 and "entirely numeric" in weak.text
    done = await async_client.post(link, {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302 and done["Location"] == "/account/login/"
    assert (await session.execute(select(func.count()).select_from(AuthSession))).scalar_one() == 0
    assert "Bob" not in (await other_browser.get("/")).text
    # They proved they read the mailbox: the address counts as confirmed.
    assert (await session.execute(select(User.email_verified_at))).scalar_one() is not None
    again = await async_client.post(link, {"new_password1": "yet-another-passphrase",
                                           "new_password2": "yet-another-passphrase"})
    assert again.status_code == 400
    assert (await async_client.get(link)).status_code == 400
    logged_in = await async_client.post("/account/login/", {"email": "bob@etu.test", "password": NEW})
    assert logged_in.status_code == 302 and settings.SESSION_COOKIE_NAME in logged_in.cookies


async def test_an_expired_or_tampered_link_opens_nothing(async_client):
    user_id = await _account()
    async with db.read_session() as read:
        state = await account_queries.account_state(read, user_id=user_id)
    expired = tokens.make(tokens.RESET, state, now=time.time() - 3 * 3600)
    good = tokens.make(tokens.RESET, state)
    head, stamp, signature = good.split(":")
    for link in (expired, f"{head}:{stamp}:{signature[::-1]}", tokens.make(tokens.VERIFY, state),
                 f"{user_id + 1}:{stamp}:{signature}"):
        assert (await async_client.get(f"/account/reset/{link}/")).status_code == 400
        assert (await async_client.post(f"/account/reset/{link}/",
                                        {"new_password1": NEW, "new_password2": NEW})).status_code == 400
    assert (await async_client.post("/account/login/", {"email": "bob@etu.test", "password": OLD})).status_code == 302


async def test_a_locked_out_owner_gets_back_in_through_the_link(async_client):
    await _account()
    for _ in range(6):
        await async_client.post("/account/login/", {"email": "bob@etu.test", "password": "a-wrong-guess"})
    locked = await async_client.post("/account/login/", {"email": "bob@etu.test", "password": OLD},
                                     headers={"Accept-Language": "en"})
    assert locked.status_code == 429 and "reset your password" in locked.text
    await async_client.post("/account/password/forgot/", {"email": "bob@etu.test"})
    link = await link_sent_to("bob@etu.test", "/account/reset/")
    assert (await async_client.post(link, {"new_password1": NEW, "new_password2": NEW})).status_code == 302
    assert (await async_client.post("/account/login/", {"email": "bob@etu.test", "password": NEW})).status_code == 302


async def test_reset_mails_to_one_address_are_throttled(async_client):
    await _account()
    for _ in range(6):
        assert (await async_client.post("/account/password/forgot/", {"email": "bob@etu.test"})).status_code == 200
    assert len(await sent()) == 3
