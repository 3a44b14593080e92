"""Forgot password: the same answer for any address, a link that works once and expires, every session ended,
and the way back in for an owner locked out by failed log-ins."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.test import AsyncClient
from sqlalchemy import func, select

from events.accounts import auth, throttle, tokens
from events.accounts import queries as account_queries
from events.models import AuthSession, OutboxMessage, Throttle, User, utcnow
from hyperion import db
from tests import factories, support
from tests.accounts.mailbox import link_sent_to, sent

OLD, NEW = "correct-horse-battery", "a-brand-new-passphrase"


async def _account(email: str = "bob@etu.test", *, verified: bool = True) -> int:
    return await factories.user(email=email, display_name="Bob", verified=verified,
                                     password_hash=await auth.password_hash(OLD))


class _ClientAt(AsyncClient):
    """A browser at another client address (the test client's requests all come from 127.0.0.1)."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def _base_scope(self, **request):
        return {**super()._base_scope(**request), "client": [self.address, 0]}


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


async def test_the_link_sets_a_new_password_once_ends_every_other_session_and_logs_in(async_client, session):
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
    assert done.status_code == 302 and done["Location"] == "/account/"
    assert "bob@etu.test" in (await async_client.get("/account/")).text  # this browser: logged in
    assert (await session.execute(select(func.count()).select_from(AuthSession))).scalar_one() == 1
    assert "Bob" not in (await other_browser.get("/")).text
    # They proved they read the mailbox: the address counts as confirmed.
    assert (await session.execute(select(User.email_verified_at))).scalar_one() is not None
    again = await async_client.post(link, {"new_password1": "yet-another-passphrase",
                                           "new_password2": "yet-another-passphrase"})
    assert again.status_code == 400
    assert (await async_client.get(link)).status_code == 400
    logged_in = await AsyncClient().post("/account/login/", {"email": "bob@etu.test", "password": NEW})
    assert logged_in.status_code == 302 and settings.SESSION_COOKIE_NAME in logged_in.cookies


async def test_the_new_password_may_not_resemble_the_display_name(async_client):
    await factories.user(email="bob@etu.test", display_name="Bartholomew Featherstone", verified=True,
                         password_hash=await auth.password_hash(OLD))
    await async_client.post("/account/password/forgot/", {"email": "bob@etu.test"})
    link = await link_sent_to("bob@etu.test", "/account/reset/")
    like_the_name = await async_client.post(link, {"new_password1": "BartholomewFeatherstone",
                                                   "new_password2": "BartholomewFeatherstone"},
                                            headers={"Accept-Language": "en"})
    assert like_the_name.status_code == 400 and "too similar to the display name" in like_the_name.text
    assert (await async_client.get(link)).status_code == 200  # nothing changed: the link still works


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


async def test_someone_spending_the_reset_mails_from_elsewhere_does_not_stop_the_owners(async_client):
    await _account()
    for attacker in ("198.51.100.1", "198.51.100.2", "2001:db8:1:2::1", "2001:db8:1:2::2"):  # the last two: one /64
        for _ in range(6):
            await _ClientAt(attacker).post("/account/password/forgot/", {"email": "bob@etu.test"})
    assert len(await sent()) == 3 * 3  # three a client, whatever it asks
    await async_client.post("/account/password/forgot/", {"email": "bob@etu.test"})  # the owner, from home
    assert len(await sent()) == 1


async def test_an_owner_locked_out_everywhere_gets_in_through_the_link(async_client, session):
    """The account is locked from anywhere and the owner's own address too: the link logs them in directly."""
    await _account()
    later = utcnow() + timedelta(hours=1)
    async with db.write_session() as write, write.begin():
        for key in (throttle.Key.of(throttle.LOGIN_ACCOUNT, subject="bob@etu.test"),
                    throttle.Key.of(throttle.LOGIN_ADDRESS, address="127.0.0.1")):
            write.add(Throttle(scope=key.scope, subject=key.subject, address=key.address, attempts=500,
                               next_allowed_at=later, updated_at=utcnow()))
    locked = await async_client.post("/account/login/", {"email": "bob@etu.test", "password": OLD})
    assert locked.status_code == 429
    await async_client.post("/account/password/forgot/", {"email": "bob@etu.test"})
    link = await link_sent_to("bob@etu.test", "/account/reset/")
    done = await async_client.post(link, {"new_password1": NEW, "new_password2": NEW}, follow=True)
    assert done.status_code == 200 and "bob@etu.test" in done.text and 'name="current_password"' not in done.text
    assert "Bob" in (await async_client.get("/")).text
