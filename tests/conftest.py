"""Test set-up: which database (``--db sqlite|postgres``), a scratch database per run, the engine, and a
clean slate after every test.

PostgreSQL: the run creates its own scratch database on the server named by ``HYPERION_TEST_PG_URL``
(default ``postgresql://postgres@127.0.0.1:5432/postgres``) and drops it at the end. SQLite: a file in a
temporary folder. Either way the schema is built by the Alembic migrations, as in production.
"""

from __future__ import annotations

import inspect
import os
import re
import secrets
from pathlib import Path

import pytest
from sqlalchemy import make_url

# Helpers that assert, rewritten like the tests themselves: their checks stay when the suite runs as
# production does, under python -OO (scripts/test), which strips plain asserts.
pytest.register_assert_rewrite("tests.fuzz")

from tests import support  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--db",
        choices=["sqlite", "postgres"],
        default=os.environ.get("HYPERION_TEST_DB", "sqlite"),
        help="database backend the suite runs against (default: sqlite, or $HYPERION_TEST_DB)",
    )


    parser.addoption(
        "--pgbouncer", action="store_true",
        help="with --db postgres: reach PostgreSQL through a PgBouncer in transaction mode started by the tests",
    )


def pytest_report_header(config):
    through = " through PgBouncer (transaction pooling)" if config.getoption("--pgbouncer") else ""
    return f"hyperion database backend: {config.getoption('--db')}{through}"


# The slow lane, left out by `pytest -m "not slow"` (`make test-fast`); `make test` runs everything. Whole
# folders and files that drive a browser, fuzz, inject faults, race requests or run the management commands
# in processes of their own; elsewhere, any test that (itself or through a fixture) starts a server or a
# process, found in its source, so a new one joins the slow lane without anyone marking it.
SLOW_FOLDERS = ("browser", "fuzz")
SLOW_FILES = ("plumbing/test_faults.py", "plumbing/test_invariants.py", "registration/test_registration_concurrency.py",
              "ops/test_commands.py", "ops/test_commands_ops.py")
STARTS_A_PROCESS = re.compile(r"\b(uvicorn_server|subprocess\.(run|Popen)|create_subprocess_exec|_sendmail)\(")
TESTS = Path(__file__).resolve().parent


def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _is_slow(item) -> bool:
    where = Path(str(item.path)).resolve().relative_to(TESTS).as_posix()
    if where.split("/")[0] in SLOW_FOLDERS or where in SLOW_FILES:
        return True
    fixtures = [definition.func for definitions in item._fixtureinfo.name2fixturedefs.values()
                for definition in definitions]
    return any(STARTS_A_PROCESS.search(_source(function)) for function in [item.function, *fixtures])


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)
    if config.getoption("--db") == "postgres":
        return
    skip = pytest.mark.skip(reason="PostgreSQL-only (row locks, concurrency, full text): run with --db postgres")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def backend(pytestconfig) -> str:
    return pytestconfig.getoption("--db")


@pytest.fixture(scope="session")
def database_url(backend, tmp_path_factory, pytestconfig):
    """The URL of this run's scratch database, migrated to the latest revision."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        support.migrate(url)
        yield url
        return
    admin_url = make_url(os.environ.get("HYPERION_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    name = f"hyperion_test_{secrets.token_hex(4)}"
    support.pg_admin(admin_url, f'CREATE DATABASE "{name}"')
    url = admin_url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    try:
        support.migrate(url)
        if not pytestconfig.getoption("--pgbouncer"):
            yield url
            return
        from django.conf import settings

        from tests.pgbouncer import pgbouncer_in_front_of

        with pgbouncer_in_front_of(admin_url) as port:
            # Transaction pooling cannot keep asyncpg's prepared statements across transactions; the live
            # counter's LISTEN goes straight to PostgreSQL (a pooled connection would lose it).
            settings.DB_STATEMENT_CACHE_SIZE = 0
            settings.DB_LISTEN_URL = url
            os.environ.update(DB_STATEMENT_CACHE_SIZE="0", DB_LISTEN_URL=url)
            yield admin_url.set(drivername="postgresql+asyncpg", database=name, host="127.0.0.1",
                                port=port).render_as_string(hide_password=False)
    finally:
        support.pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def _site_database(database_url):
    """Point the site (settings and the engine) at the scratch database for the whole run."""
    from django.conf import settings

    settings.DATABASE_URL = database_url
    os.environ["DATABASE_URL"] = database_url  # for servers the tests start
    yield database_url


@pytest.fixture(autouse=True)
async def _clean_database(_site_database):
    """Every test starts from empty tables (the schema stays); the engine is the process's own."""
    from hyperion import db

    db.engine_start(_site_database)
    yield
    await support.truncate_all(db.get_engine())


@pytest.fixture(scope="session", autouse=True)
async def _dispose_engine_at_end():
    yield
    from events.live import broadcast
    from hyperion import db

    await broadcast.broadcaster.stop()
    await db.engine_dispose()


@pytest.fixture
async def session():
    """A read session for the test's own checks (autocommit: it never holds a lock on SQLite)."""
    from hyperion import db

    async with db.read_session() as read_session:
        yield read_session


@pytest.fixture
def async_client():
    from django.test import AsyncClient

    return AsyncClient()



@pytest.fixture
def smtp():
    """A real SMTP server on loopback that the outbox's sender delivers to, retries at once (tests/mail.py)."""
    from django.test import override_settings

    from tests.mail import SmtpServer

    server = SmtpServer()
    server.start()
    with override_settings(EMAIL_CONFIG=server.config, OUTBOX_RETRY_BASE_SECONDS=0.0):
        yield server
    server.stop()


@pytest.fixture
def cache_on(settings):
    """The page store on, as in production (the suite's settings turn it off: test data is often inserted
    past the services that invalidate it), starting empty."""
    from hyperion import pagecache

    settings.PAGE_CACHE_SECONDS = 30.0
    settings.PAGE_CACHE_GRACE_SECONDS = 0.0
    pagecache.clear()
    yield
    pagecache.clear()
