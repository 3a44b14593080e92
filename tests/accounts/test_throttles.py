"""Throttles count an attempt before the password is checked, in one statement: parallel guesses never get more
checks than the limit. Delays grow instead of a wall, and the owner from another address is not slowed."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from events.accounts import auth, throttle
from events.accounts import services as account_services
from events.models import Throttle, utcnow
from hyperion import db
from hyperion.threadgate import GateFull
from tests import factories, support

PASSWORD = "correct-horse-battery"


async def _account(email: str = "bob@etu.test") -> int:
    return await factories.user(email=email, display_name="Bob", password_hash=await auth.password_hash(PASSWORD))


async def _login(password: str, *, address: str = "192.0.2.7", email: str = "bob@etu.test") -> str:
    try:
        async with db.write_session() as session:
            await account_services.login(session, email=email, password=password, address=address)
    except account_services.LoginThrottled:
        return "throttled"
    except account_services.LoginRefused:
        return "refused"
    return "in"


@pytest.mark.postgres_only
async def test_thirty_parallel_wrong_passwords_get_five_password_checks(session):
    await _account()
    outcomes = Counter(await asyncio.gather(*(_login(f"guess-{number}") for number in range(30))))
    # "refused" is an answer after a password check; "throttled" never reached one.
    assert outcomes == {"refused": throttle.LOGIN.free, "throttled": 30 - throttle.LOGIN.free}
    attempts = (await session.execute(select(Throttle.attempts).where(Throttle.scope == "login"))).scalar_one()
    assert attempts == throttle.LOGIN.free


async def test_delays_grow_and_the_owner_elsewhere_is_not_slowed(session):
    await _account()
    for _ in range(5):
        assert await _login("wrong-password") == "refused"
    assert await _login(PASSWORD) == "throttled"
    assert await _login(PASSWORD, address="198.51.100.1") == "in"  # the owner, from their phone
    waits = []
    for _ in range(3):
        row = (await session.execute(select(Throttle.next_allowed_at, Throttle.attempts)
                                     .where(Throttle.scope == "login"))).one()
        waits.append(row.next_allowed_at)
        async with db.write_session() as write, write.begin():  # raw: the delay runs out (no service moves the clock)
            await write.execute(update(Throttle).where(Throttle.scope == "login")
                                .values(next_allowed_at=utcnow() - timedelta(seconds=1)))
        before = utcnow()
        assert await _login("wrong-password") == "refused"
        assert await _login("wrong-password") == "throttled"  # at once: one more only after the delay
        waits[-1] = (await session.execute(select(Throttle.next_allowed_at)
                                           .where(Throttle.scope == "login"))).scalar_one() - before
    assert waits[0] < waits[1] < waits[2] <= throttle.LOGIN.max_delay
    assert round(waits[1] / waits[0]) == 2


async def test_the_right_password_forgives_the_attempts(session):
    await _account()
    for _ in range(4):
        await _login("wrong-password")
    assert await _login(PASSWORD) == "in"
    for _ in range(4):
        assert await _login("wrong-password") == "refused"


async def test_the_password_change_form_is_throttled(async_client):
    user_id = await _account()
    await support.login(async_client, user_id)
    data = {"new_password1": "brand-new-secret-1", "new_password2": "brand-new-secret-1"}
    answers = [(await async_client.post("/account/password/", {"current_password": f"guess-{number}", **data},
                                        headers={"Accept-Language": "en"})) for number in range(6)]
    assert [answer.status_code for answer in answers] == [400] * 5 + [429]
    assert "Too many attempts" in answers[-1].text
    right = await async_client.post("/account/password/", {"current_password": PASSWORD, **data})
    assert right.status_code == 429  # even the right one waits: the form is no oracle


def test_an_ipv6_client_counts_by_its_64_and_an_ipv4_client_by_its_address():
    assert throttle.client_group("2001:db8:1:2:aaaa::1") == throttle.client_group("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert throttle.client_group("2001:db8:1:3::1") != throttle.client_group("2001:db8:1:2::1")
    assert throttle.client_group("192.0.2.7") == "192.0.2.7" != throttle.client_group("192.0.2.8")
    assert throttle.client_group("::ffff:192.0.2.7") == "192.0.2.7"  # IPv4 reached over IPv6
    assert throttle.client_group("unknown") == "unknown"


async def test_a_guesser_changing_address_inside_one_ipv6_64_is_still_slowed(session):
    await _account()
    for number in range(5):
        assert await _login("wrong-password", address=f"2001:db8:1:2::{number + 1}") == "refused"
    assert await _login("wrong-password", address="2001:db8:1:2::99") == "throttled"
    assert await _login(PASSWORD, address="2001:db8:7:7::1") == "in"  # the owner, on another network


async def test_a_busy_hashing_line_while_saving_the_new_password_counts_no_attempt(monkeypatch, session):
    user_id = await _account()

    async def line_full(_password):
        raise GateFull(30)

    monkeypatch.setattr(auth, "password_hash", line_full)
    for _ in range(throttle.PASSWORD_CHANGE.free + 1):
        with pytest.raises(GateFull):
            async with db.write_session() as write:
                await account_services.password_change(write, user_id=user_id, current_password=PASSWORD,
                                                       new_password="brand-new-secret-1", keep_token="")
    assert (await session.execute(select(Throttle.attempts).where(Throttle.scope == "password-change"))
            ).scalar_one() == 0
