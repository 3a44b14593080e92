"""Sign-up never tells whether an address has an account: the same answer, and the owner hears by e-mail."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from events.models import User
from tests import factories
from tests.accounts.mailbox import sent, text_of

PASSWORD = "correct-horse-battery"


def _form(email: str) -> dict:
    return {"email": email, "display_name": "Léa", "password1": PASSWORD, "password2": PASSWORD}


def _body(response, email: str) -> str:
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    return text.replace(email, "ADDRESS")


async def test_a_taken_and_a_free_address_get_the_same_answer_and_the_owner_an_email(async_client, session):
    await factories.user(email="taken@etu.test", display_name="Owner")
    taken = await async_client.post("/account/signup/", _form("taken@etu.test"))
    free = await async_client.post("/account/signup/", _form("free@etu.test"))
    assert taken.status_code == free.status_code == 200
    assert _body(taken, "taken@etu.test") == _body(free, "free@etu.test")
    assert set(taken.cookies) == set(free.cookies)
    assert (await session.execute(select(func.count(User.id)))).scalar_one() == 2
    messages = {message["To"]: message for message in await sent()}
    assert set(messages) == {"Owner <taken@etu.test>", "Léa <free@etu.test>"}
    owner = text_of(messages["Owner <taken@etu.test>"])
    assert "/account/login/" in owner and "/account/verify/" not in owner
    assert messages["Owner <taken@etu.test>"]["Subject"] in ("Quelqu'un a essayé de créer un compte avec votre "
                                                              "adresse", "Someone tried to sign up with your address")
    assert "/account/verify/" in text_of(messages["Léa <free@etu.test>"])


async def test_sign_up_is_throttled_by_address(async_client):
    answers = [(await async_client.post("/account/signup/", _form(f"new{number}@etu.test"))).status_code
               for number in range(12)]
    assert answers == [200] * 10 + [429] * 2


async def test_a_taken_and_a_free_address_cost_the_same_work(async_client, monkeypatch):
    """The timing class: what makes a sign-up slow is its password hash (tens of milliseconds by design; the
    statements around it are well under a millisecond each), and both answers run exactly one, in full. Counted
    rather than timed: a wall-clock comparison would flake on a loaded machine."""
    from django.contrib.auth.hashers import make_password

    from events.accounts import auth

    hashes: list[str] = []

    def counted(raw_password):
        hashes.append(raw_password)
        return make_password(raw_password)

    def no_check(raw_password, encoded):
        raise AssertionError("sign-up checked a password")

    monkeypatch.setattr(auth, "make_password", counted)
    monkeypatch.setattr(auth, "check_password", no_check)
    await factories.user(email="taken@etu.test", display_name="Owner")
    for email in ("taken@etu.test", "free@etu.test"):
        hashes.clear()
        assert (await async_client.post("/account/signup/", _form(email))).status_code == 200
        assert hashes == [PASSWORD], email
