"""manage.py resetpassword EMAIL: an operator sets a password, as a reset link would."""

from __future__ import annotations

import os
import subprocess
import sys

from django.contrib.auth.hashers import check_password
from sqlalchemy import func, select

from events.accounts import auth, throttle
from events.models import AuthSession, Throttle, User
from hyperion import db
from tests import factories
from tests.ops.test_commands_ops import manage_on_terminal
from tests.support import ROOT

NEW = "an-operator-set-passphrase"


def manage(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, input=stdin,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"})


async def test_password_from_stdin_ends_sessions_confirms_the_address_and_unlocks(session):
    user_id = await factories.user(email="bob@etu.test", verified=False)
    async with db.write_session() as write:
        await auth.session_create(write, user_id=user_id)
    async with db.write_session() as write, write.begin():
        for _ in range(6):
            try:
                await throttle.attempt(write, throttle.login_keys("bob@etu.test", "192.0.2.1"))
            except throttle.Throttled:
                break
    result = manage("resetpassword", "BOB@etu.test", "--password-stdin", stdin=NEW + "\n")
    assert result.returncode == 0, result.stderr
    assert "Password changed for bob@etu.test" in result.stdout
    user = (await session.execute(select(User.password_hash, User.email_verified_at))).one()
    assert check_password(NEW, user.password_hash) and user.email_verified_at is not None
    assert (await session.execute(select(func.count()).select_from(AuthSession))).scalar_one() == 0
    assert (await session.execute(select(func.count()).select_from(Throttle)
                                  .where(Throttle.subject == "bob@etu.test"))).scalar_one() == 0


async def test_refusals_are_one_clear_line(session):
    await factories.user(email="bob@etu.test", password_hash="old")
    for args, stdin, fragment in (
        (("nobody@etu.test", "--password-stdin"), NEW + "\n", "no active account"),
        (("bob@etu.test", "--password-stdin"), "1234567890\n", "entirely numeric"),
        (("bob@etu.test",), "", "--password-stdin"),  # no terminal to ask on
        (("not-an-address", "--password-stdin"), NEW, "not a valid e-mail address"),
    ):
        result = manage("resetpassword", *args, stdin=stdin)
        assert result.returncode != 0 and fragment in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (await session.execute(select(User.password_hash))).scalar_one() == "old"


async def test_on_a_terminal_it_asks_twice_and_again_when_they_differ(session):
    await factories.user(email="bob@etu.test", password_hash="old")
    code, shown = manage_on_terminal("resetpassword", "bob@etu.test", answers=[
        ("New password for bob@etu.test: ", NEW), ("New password (again): ", "something-else-entirely"),
        ("New password for bob@etu.test: ", NEW), ("New password (again): ", NEW)])
    assert code == 0 and "the two passwords differ" in shown and "Password changed" in shown, shown
    assert check_password(NEW, (await session.execute(select(User.password_hash))).scalar_one())
