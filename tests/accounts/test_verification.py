"""E-mail verification: sign-up sends a link that confirms the address once; until then the account browses but
cannot register, get a feed or hold a role."""

from __future__ import annotations

import time

from django.test import AsyncClient
from sqlalchemy import select

from events.accounts import queries as account_queries
from events.accounts import tokens
from events.models import Role, User
from events.staff import people as staff_people
from hyperion import db
from tests import factories
from tests.accounts.mailbox import link_sent_to, sent

PASSWORD = "correct-horse-battery"


async def _sign_up(client: AsyncClient, email: str = "lea@etu.test") -> None:
    response = await client.post("/account/signup/", {
        "email": email, "display_name": "Léa", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 200, response.text[-2000:]


async def _log_in(client: AsyncClient, email: str = "lea@etu.test") -> None:
    response = await client.post("/account/login/", {"email": email, "password": PASSWORD})
    assert response.status_code == 302


async def _verified_at(session, email: str = "lea@etu.test"):
    return (await session.execute(select(User.email_verified_at).where(User.email == email))).scalar_one()


async def test_the_link_confirms_the_address_once(async_client, session):
    await _sign_up(async_client)
    link = await link_sent_to("lea@etu.test", "/account/verify/")
    assert await _verified_at(session) is None
    confirmed = await async_client.get(link)
    assert confirmed.status_code == 302
    assert await _verified_at(session) is not None
    again = await async_client.get(link, headers={"Accept-Language": "en"})
    assert again.status_code == 400 and "invalid, expired or already used" in again.text


async def test_an_expired_or_tampered_link_confirms_nothing(async_client, session):
    await _sign_up(async_client)
    async with db.read_session() as read:
        user_id = (await read.execute(select(User.id))).scalar_one()
        state = await account_queries.account_state(read, user_id=user_id)
    four_days_ago = time.time() - 4 * 24 * 3600
    expired = tokens.make(tokens.VERIFY, state, now=four_days_ago)
    assert (await async_client.get(f"/account/verify/{expired}/")).status_code == 400
    good = tokens.make(tokens.VERIFY, state)
    user_part, stamp, signature = good.split(":")
    for forged in (f"{user_id + 1}:{stamp}:{signature}", f"{user_part}:{stamp}:{signature[:-2]}AA",
                   tokens.make(tokens.RESET, state), "nonsense", "9" * 300):
        assert (await async_client.get(f"/account/verify/{forged}/")).status_code in (400, 404), forged
    assert await _verified_at(session) is None
    assert (await async_client.get(f"/account/verify/{good}/")).status_code == 302
    assert await _verified_at(session) is not None


async def test_an_unverified_account_cannot_register_nor_make_a_feed_until_it_confirms(async_client, session):
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="gala")
    await _sign_up(async_client)
    await _log_in(async_client)
    page = await async_client.get("/events/gala/", headers={"Accept-Language": "en"})
    assert "Confirm your e-mail address to register" in page.text and "Send the link again" in page.text
    refused = await async_client.post("/events/gala/register/", headers={"Referer": "http://testserver/events/gala/"})
    assert refused.status_code == 302 and refused["Location"] == "http://testserver/events/gala/"
    assert (await async_client.post("/account/feed/", {"action": "regenerate"})).status_code == 302
    assert (await session.execute(select(User.feed_token_hash))).scalar_one() is None
    my_events = (await async_client.get("/me/events/")).text
    assert "Gala" not in my_events

    await async_client.get(await link_sent_to("lea@etu.test", "/account/verify/"))
    assert "Send the link again" not in (await async_client.get("/events/gala/")).text
    registered = await async_client.post("/events/gala/register/")
    assert registered.status_code == 302 and registered["Location"] == "/events/gala/"
    assert "Gala" in (await async_client.get("/me/events/")).text
    feed = await async_client.post("/account/feed/", {"action": "regenerate"})
    assert feed.status_code == 200 and "/feeds/me/" in feed.text


async def test_a_role_granted_to_an_unverified_address_takes_effect_once_it_is_confirmed(async_client, session):
    association_id = await factories.association()
    await _sign_up(async_client, "someone@etu.test")
    async with db.write_session() as write:
        await staff_people.role_set(write, actor=None, association_id=association_id, email="someone@etu.test",
                                    role=Role.MANAGER)
        user_id = (await write.execute(select(User.id))).scalar_one()
    async with db.write_session() as write:
        await staff_people.user_staff_set(write, actor=factories.SET_UP, user_id=user_id, is_staff=True,
                                          is_active=True)
    await _log_in(async_client, "someone@etu.test")
    assert (await async_client.get("/manage/")).status_code in (403, 404)
    assert "/manage/" not in (await async_client.get("/")).text
    async with db.read_session() as read:
        assert await account_queries.user_roles(read, user_id=user_id) == {}

    await async_client.get(await link_sent_to("someone@etu.test", "/account/verify/"))
    assert (await async_client.get("/manage/")).status_code == 200
    async with db.read_session() as read:
        assert await account_queries.user_roles(read, user_id=user_id) == {association_id: Role.MANAGER}


async def test_membership_granted_to_an_unverified_address_shows_members_events_only_once_it_is_confirmed(
        async_client):
    association_id = await factories.association(slug="club", name="Club Théâtre")
    await factories.event(association_id=association_id, slug="secret", title="Soirée secrète",
                          restricted_to="members", hidden_from_others=True)
    await _sign_up(async_client, "squat@etu.test")
    async with db.write_session() as write:
        await staff_people.role_set(write, actor=None, association_id=association_id, email="squat@etu.test",
                                    role=Role.MEMBER)
    await _log_in(async_client, "squat@etu.test")
    assert (await async_client.get("/events/secret/")).status_code == 404
    assert "Soirée secrète" not in (await async_client.get("/associations/club/")).text

    await async_client.get(await link_sent_to("squat@etu.test", "/account/verify/"))
    assert (await async_client.get("/events/secret/")).status_code == 200
    assert "Soirée secrète" in (await async_client.get("/associations/club/")).text


async def test_send_the_link_again_is_throttled(async_client):
    await _sign_up(async_client)
    await sent()
    await _log_in(async_client)
    answers = []
    for _ in range(5):
        response = await async_client.post("/account/verify/again/", {"next": "/"}, headers={"Accept-Language": "en"})
        assert response.status_code == 302
        answers.append((await async_client.get("/")).text)
    assert sum("We sent the link again" in page for page in answers) == 3  # then a growing delay
    assert "A link was sent a moment ago" in answers[-1]
    assert len(await sent()) == 3


async def test_links_with_odd_digits_are_simply_invalid(async_client):
    for token in ("²:abc:def", "١٢:abc:def", "12"):
        assert (await async_client.get(f"/account/verify/{token}/")).status_code == 400, token
