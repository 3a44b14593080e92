"""Operators' commands: they work, they are idempotent, and they fail clearly (no traceback)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.core.files.storage import storages
from django.test import AsyncClient
from PIL import Image
from sqlalchemy import func, select

from events.management.commands import loaddemo
from events.models import (
    Association,
    Event,
    EventStatus,
    Membership,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.ops import demo, demo_images
from hyperion.app import HyperionApp
from hyperion.images import ImageRef, share_name, variant_name
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
    assert counts == {"associations": 15, "users": 300 + len(demo.ACCOUNTS), "events": 60}
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
    # Pages name an event's association beside its title: a title that names it too reads it twice.
    titles = (await session.execute(select(Event.title, Association.name)
                                    .join(Association, Association.id == Event.association_id))).all()
    assert not [title for title, association in titles if association in title]
    # One event opens by lottery tomorrow, nobody entered yet: a new user can watch its countdown and draw.
    lotteries = (await session.execute(select(Event.id, Event.registration_opens_at, Event.status)
                                       .where(Event.lottery_minutes.is_not(None)))).all()
    assert len(lotteries) == 1 and lotteries[0].status == EventStatus.APPROVED
    assert lotteries[0].registration_opens_at > utcnow()
    assert (await session.execute(select(func.count(Registration.id))
                                  .where(Registration.event_id == lotteries[0].id))).scalar_one() == 0

    second = manage("loaddemo", "--students", "300", "--events", "60")
    assert second.returncode == 0 and "already present" in second.stdout
    assert (await session.execute(select(func.count(Event.id)))).scalar_one() == 60


async def test_the_demo_has_a_plain_student_and_separate_editor_manager_and_staff_accounts(session):
    result = manage("loaddemo", "--students", "20", "--events", "5")
    assert result.returncode == 0, result.stderr
    roles = dict((await session.execute(
        select(User.email, Membership.role).join(Membership, Membership.user_id == User.id, isouter=True)
        .where(User.email.in_([account.email for account in demo.ACCOUNTS]))
    )).all())
    assert roles == {demo.STUDENT_EMAIL: None, demo.EDITOR_EMAIL: Role.EDITOR, demo.MANAGER_EMAIL: Role.MANAGER,
                     demo.STAFF_EMAIL: None}
    staff = dict((await session.execute(select(User.email, User.is_staff).where(
        User.email.in_([account.email for account in demo.ACCOUNTS])))).all())
    assert staff == {demo.STUDENT_EMAIL: False, demo.EDITOR_EMAIL: False, demo.MANAGER_EMAIL: False,
                     demo.STAFF_EMAIL: True}
    student = next(account for account in demo.ACCOUNTS if account.email == demo.STUDENT_EMAIL)
    assert student.display_name == "Étudiante Démo" and "no association role" in student.what
    # Loaded outside DEBUG, the passwords are random: a later run in DEBUG does not print the known ones.
    again = manage("loaddemo", env={"DEBUG": "true"})
    assert again.returncode == 0 and "already present" in again.stdout
    assert loaddemo.DEV_PASSWORDS["student"] not in again.stdout


async def test_loaddemo_draws_logos_and_posters_that_the_pages_show(session):
    result = manage("loaddemo", "--students", "20", "--events", "40")
    assert result.returncode == 0, result.stderr
    associations = (await session.execute(select(Association.name, Association.logo, Association.logo_alt))).all()
    logos = {ImageRef.parse(row.logo) for row in associations}
    assert len(associations) == len(demo.ASSOCIATIONS) == len(logos)  # one each, none the same
    assert [row.logo_alt for row in associations] == [f"Logo de l'association {row.name}" for row in associations]
    # The events not over yet have posters, soonest first (a few left to their logo), their date in the text.
    coming = (await session.execute(
        select(Event.title, Event.status, Event.poster, Event.poster_alt, Association.name)
        .join(Association, Association.id == Event.association_id)
        .where(Event.ends_at >= utcnow(), Event.status != EventStatus.CANCELLED).order_by(Event.starts_at))).all()
    with_poster = [row for row in coming if row.poster]
    assert len(coming) >= 8 and len(coming) - len(with_poster) <= len(coming) // 4 + 1
    assert all(row.poster_alt.startswith(f"Affiche : {row.title}, {row.name}, ") for row in with_poster)
    assert f"{len(with_poster)} posters" in result.stdout and f"{len(associations)} logos" in result.stdout
    posters = {ImageRef.parse(row.poster) for row in with_poster}
    assert {(ref.width, ref.height) for ref in posters} == {demo_images.POSTER_SIZE}

    # Stored like an upload: every width and the share preview, real images.
    for ref in logos | posters:
        assert ref is not None
        for width in ref.widths:
            assert storages["images"].exists(variant_name(ref.hash, width))
        assert storages["images"].exists(share_name(ref.hash))
    poster = next(iter(posters))
    with Image.open(Path(settings.MEDIA_ROOT) / variant_name(poster.hash, 640)) as drawn:
        assert drawn.format == "WEBP" and drawn.size == demo_images.POSTER_SIZE
        assert len(drawn.getcolors(maxcolors=1_000_000) or []) > 1000  # a picture, not a blank

    # A visitor's home page shows them as thumbnails, a poster or else the association's logo, never a blank
    # tile, and the addresses answer.
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    home = (await client.get("/")).text
    shown = re.findall(r'<img class="thumb" src="/media/images/([0-9a-f]{20})-160.webp"', home)
    assert "thumb-empty" not in home and len(shown) >= 8
    assert set(shown) & {ref.hash for ref in posters} and set(shown) & {ref.hash for ref in logos}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=HyperionApp()),
                                 base_url="http://testserver") as server:
        thumbnail = await server.get(f"/media/images/{shown[0]}-160.webp")
    assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/webp"


def test_loaddemo_in_debug_prints_the_demo_accounts_on_every_run():
    for run in ("first", "second"):
        result = manage("loaddemo", "--students", "20", "--events", "5", env={"DEBUG": "true"})
        assert result.returncode == 0, result.stderr
        for account in demo.ACCOUNTS:
            assert f"{account.email} " in result.stdout, (run, result.stdout)
        assert f"/ {loaddemo.DEV_PASSWORDS['student']} " in result.stdout
        assert f"/ {loaddemo.DEV_PASSWORDS['staff']} " in result.stdout
    assert "already present" in result.stdout


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


# What a new user can get wrong: each is one line on stderr and a non-zero exit, never a traceback.

def assert_one_line_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def test_a_missing_secret_key_is_one_line_that_says_what_to_do():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate"], cwd=ROOT, capture_output=True, text=True,
        env=env | {"DJANGO_SETTINGS_MODULE": "hyperion.settings", "HYPERION_ENV_FILE": ""},
    )
    assert_one_line_error(result, "SECRET_KEY must be set", ".env", "make run")


@pytest.mark.parametrize(("url", "expected"), [
    ("mysql://someone:hunter2hunter2@db.example.org/events", "mysql:// is not supported"),
    ("postgresql-but-not-a-url", "DATABASE_URL is not a database URL"),
    ("", "DATABASE_URL is not a database URL"),
])
def test_an_unsupported_or_malformed_database_url_is_one_line(url, expected):
    result = manage("migrate", env={"DATABASE_URL": url})
    assert_one_line_error(result, expected, "postgresql+asyncpg://")
    assert "hunter2" not in result.stderr


@pytest.mark.postgres_only
@pytest.mark.parametrize("command", [["migrate"], ["loaddemo"], ["createstaff", "--noinput", "--email",
                                                                 "a@b.test", "--display-name", "A"]])
def test_a_postgresql_database_that_does_not_exist_is_one_line(command):
    from sqlalchemy import make_url

    admin = make_url(os.environ.get("HYPERION_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    url = admin.set(database="hyperion_never_created").render_as_string(hide_password=False)
    result = manage(*command, env={"DATABASE_URL": url, "HYPERION_STAFF_PASSWORD": "a-long-password-1234"})
    assert_one_line_error(result, "'hyperion_never_created' does not exist", "createdb")


def test_a_postgresql_login_the_server_refuses_is_one_line(backend):
    if backend != "postgres":
        pytest.skip("needs the PostgreSQL server of the run")
    from sqlalchemy import make_url

    admin = make_url(os.environ.get("HYPERION_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    url = admin.set(username="hyperion_no_such_role").render_as_string(hide_password=False)
    assert_one_line_error(manage("migrate", env={"DATABASE_URL": url}), "refused the login", "hyperion_no_such_role")


@pytest.mark.parametrize("command", [["migrate"], ["loaddemo"]])
def test_an_sqlite_database_that_cannot_be_opened_is_one_line(command, tmp_path):
    missing_folder = tmp_path / "no-such-folder" / "site.sqlite3"
    result = manage(*command, env={"DATABASE_URL": f"sqlite+aiosqlite:///{missing_folder}"})
    assert_one_line_error(result, f"its folder {missing_folder.parent} does not exist")
    assert not missing_folder.parent.exists()  # not made behind the user's back
    # A folder where the file should be: sqlite3 cannot open it (as an unreadable file).
    result = manage(*command, env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}"})
    assert_one_line_error(result, "cannot open the SQLite database", "it is a folder")
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not a database\n" * 100)
    result = manage(*command, env={"DATABASE_URL": f"sqlite+aiosqlite:///{not_a_database}"})
    assert_one_line_error(result, "it is not an SQLite database file")


@pytest.mark.parametrize(("addrport", "expected"), [
    ("127.0.0.1:99999", "port 99999 is out of range"),
    ("0", "port 0 is out of range"),
    ("abc", "'abc' is not a port"),
    ("127.0.0.1:", "not a port"),
])
def test_runserver_refuses_an_invalid_port_in_one_line(addrport, expected):
    assert_one_line_error(manage("runserver", addrport, "--noreload"), expected)


def test_djangos_commands_that_need_the_orm_are_not_listed():
    from events.management.utility import UNAVAILABLE

    listing = manage("help")
    assert listing.returncode == 0, listing.stderr
    names = {line.strip() for line in listing.stdout.splitlines() if line.startswith("    ")}
    assert {"migrate", "makemigrations", "runserver", "loaddemo", "check", "shell"} <= names
    assert not names & set(UNAVAILABLE)
    assert {"dbshell", "flush", "dumpdata", "loaddata", "showmigrations", "sqlmigrate"} <= set(UNAVAILABLE)
    commands = manage("help", "--commands")
    assert "migrate" in commands.stdout.split() and not set(commands.stdout.split()) & set(UNAVAILABLE)


def test_every_command_left_out_of_the_listing_would_fail_on_the_orm():
    """The list is Django's commands that cannot work here: none that works is hidden, none is missed."""
    from django.core.management import get_commands

    from events.management.utility import UNAVAILABLE

    django_commands = {name for name, app in get_commands().items() if app.startswith("django.")}
    assert set(UNAVAILABLE) <= django_commands
    works_without_the_orm = {"check", "compilemessages", "makemessages", "diffsettings", "sendtestemail", "shell",
                             "startapp", "startproject"}
    assert django_commands - set(UNAVAILABLE) == works_without_the_orm


@pytest.mark.parametrize("command", [
    ["dbshell"], ["showmigrations"], ["sqlmigrate", "events", "0001"], ["flush", "--noinput"],
    ["dumpdata", "--format", "json"], ["loaddata", "fixture.json"], ["inspectdb"], ["squashmigrations", "x", "1"],
    ["sqlflush"], ["sqlsequencereset", "events"], ["createcachetable"], ["optimizemigration", "x", "1"],
    ["test"], ["testserver", "fixture.json"], ["dbshell", "--help"],
])
def test_djangos_commands_that_need_the_orm_say_why_in_one_line(command):
    assert_one_line_error(manage(*command), f"CommandError: {command[0]} is not available on this site")
