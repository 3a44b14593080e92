"""E-mail addresses have one normalisation, events/rules/emails.py's normalize_email. An address typed with
spaces and capitals reaches the same account through every door: the sign-up form, the log-in look-up and its
throttle, a manager adding an attendee or a member, the audit log's filter, and the operators' commands."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from events.accounts import queries as account_queries
from events.accounts import services as account_services
from events.accounts.forms import SignupForm
from events.models import Membership, Role, Throttle, User
from events.rules.emails import normalize_email
from events.rules.permissions import Actor
from events.staff import people as staff_people
from events.staff import queries as staff_queries
from hyperion import db
from tests import factories, support

STORED = "alice.martin@etu.test"
TYPED = "  Alice.MARTIN@Etu.Test "


def _manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args], cwd=support.ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"})


def test_the_owner_s_spelling():
    assert normalize_email(TYPED) == STORED


def test_the_sign_up_form_stores_the_owner_s_spelling():
    form = SignupForm(data={"email": TYPED, "display_name": "Alice", "password1": "a-long-passphrase-42",
                            "password2": "a-long-passphrase-42"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["email"] == STORED


async def test_every_door_finds_the_account_from_the_typed_spelling():
    association_id = await factories.association(slug="club", name="Club")
    async with db.write_session() as session:
        user_id = await account_services.user_create(session, email=TYPED, display_name="Alice", password_hash="!")
    async with db.read_session() as session:
        assert (await session.execute(select(User.email).where(User.id == user_id))).scalar_one() == STORED
        assert (await account_queries.user_credentials(session, email=TYPED)).id == user_id
    # The log-in throttle counts failures under one spelling, whatever was typed.
    async with db.write_session() as session:
        with pytest.raises(account_services.LoginRefused):
            await account_services.login(session, email=TYPED, password="not-the-password", address="10.0.0.1")
    async with db.read_session() as session:
        counted = (await session.execute(select(Throttle.subject).where(Throttle.subject != ""))).scalars().all()
    assert counted and set(counted) == {STORED}
    # A manager adds the attendee and the member by the typed spelling.
    staff_id = await factories.user(email="staff@etu.test", display_name="Staff", is_staff=True)
    staff = Actor(id=staff_id, is_staff=True)
    event_id = await factories.event(association_id=association_id, slug="gala")
    async with db.write_session() as session:
        outcome = await staff_people.attendee_add(session, actor=staff, event_id=event_id, email=TYPED)
    assert outcome.registration_id is not None
    async with db.write_session() as session:
        await staff_people.role_set(session, actor=staff, association_id=association_id, email=TYPED,
                                    role=Role.EDITOR)
    # The audit log's "by" filter finds what this account did, typed either way.
    async with db.write_session() as session:
        await staff_people.role_set(session, actor=Actor(id=user_id, is_staff=True), association_id=association_id,
                                    email="staff@etu.test", role=Role.MEMBER)
    async with db.read_session() as session:
        by_typed, _more = await staff_queries.audit_entries(session, actor_email=TYPED)
        by_stored, _more = await staff_queries.audit_entries(session, actor_email=STORED)
    assert by_typed and [row.id for row in by_typed] == [row.id for row in by_stored]


async def test_the_operators_commands_find_the_account_from_the_typed_spelling(session):
    await factories.association(slug="club", name="Club")
    user_id = await factories.user(email=STORED, display_name="Alice")
    with ThreadPoolExecutor(max_workers=2) as pool:
        setrole, createstaff = pool.map(lambda args: _manage(*args), [
            ("setrole", TYPED, "club", "manager"),
            ("createstaff", "--noinput", "--promote", "--email", TYPED, "--display-name", "Alice"),
        ])
    assert setrole.returncode == 0, setrole.stderr
    assert f"{STORED} is manager" in setrole.stdout
    assert createstaff.returncode == 0, createstaff.stderr
    assert (await session.execute(select(Membership.role).where(Membership.user_id == user_id))).scalar_one() \
        == Role.MANAGER
    assert (await session.execute(select(User.is_staff).where(User.id == user_id))).scalar_one()
    assert (await session.execute(select(User.id).where(User.email == STORED))).scalars().all() == [user_id]
