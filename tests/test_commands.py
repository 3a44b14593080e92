"""Operators' commands: they work, they are idempotent, and they fail clearly (no traceback)."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from events import demo
from events.models import Association, Event, EventStatus, Registration, RegistrationStatus, User
from tests.support import ROOT


def manage(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **(env or {})},
    )


async def test_loaddemo_fills_the_database_with_realistic_data_once(session):
    first = manage("loaddemo", "--students", "300", "--events", "60")
    assert first.returncode == 0, first.stderr
    assert "Demo loaded" in first.stdout and demo.STAFF_EMAIL in first.stdout
    counts = {
        "associations": (await session.execute(select(func.count(Association.id)))).scalar_one(),
        "users": (await session.execute(select(func.count(User.id)))).scalar_one(),
        "events": (await session.execute(select(func.count(Event.id)))).scalar_one(),
    }
    assert counts == {"associations": 15, "users": 302, "events": 60}
    statuses = set((await session.execute(select(Event.status))).scalars())
    assert {EventStatus.APPROVED, EventStatus.SUBMITTED} <= statuses
    # No event is oversold, and full ones have a waitlist.
    confirmed = (await session.execute(
        select(Event.capacity, func.count(Registration.id))
        .join(Registration, Registration.event_id == Event.id)
        .where(Registration.status == RegistrationStatus.CONFIRMED)
        .group_by(Event.id, Event.capacity)
    )).all()
    assert all(capacity is None or count <= capacity for capacity, count in confirmed)
    assert (await session.execute(select(func.count(User.id)).where(User.is_staff.is_(True)))).scalar_one() == 1

    second = manage("loaddemo", "--students", "300", "--events", "60")
    assert second.returncode == 0 and "already present" in second.stdout
    assert (await session.execute(select(func.count(Event.id)))).scalar_one() == 60


def test_loaddemo_refuses_bad_arguments_clearly():
    result = manage("loaddemo", "--students", "abc")
    assert result.returncode != 0 and "invalid int value" in result.stderr
    result = manage("loaddemo", "--students", "3")
    assert result.returncode != 0 and "at least 20" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["migrate"], ["loaddemo"], ["makemigrations", "--check"]])
def test_commands_report_an_unreachable_database_without_a_traceback(command):
    result = manage(*command, env={"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"})
    assert result.returncode != 0
    assert "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_is_idempotent_and_makemigrations_check_passes():
    first = manage("migrate")
    assert first.returncode == 0, first.stderr
    assert manage("migrate").returncode == 0
    check = manage("makemigrations", "--check")
    assert check.returncode == 0, check.stderr + check.stdout


def test_runserver_refuses_a_bad_address():
    result = manage("runserver", "not-an-address")
    assert result.returncode != 0 and "not a port" in result.stderr


PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "hyperion.settings", "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "production-secret-key-with-enough-entropy-0123456789",
    "ALLOWED_HOSTS": "events.example.org", "SECURE_HSTS_PRELOAD": "true",
}


def test_deploy_checks_are_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_checks_still_see_a_weakened_security_setting_through_our_async_middleware():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    env={**PRODUCTION_ENV, "SECURE_HSTS_SECONDS": "0", "CSRF_COOKIE_SECURE": "false"})
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W016" in result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        env={k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
        | {"DJANGO_SETTINGS_MODULE": "hyperion.settings"},
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr
