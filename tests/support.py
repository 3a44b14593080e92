"""Helpers the tests share: scratch databases, migrations, clean tables, real servers, test data."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import URL, insert, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from events.models import (
    Association,
    Base,
    Event,
    EventStatus,
    Registration,
    RegistrationStatus,
    User,
    utcnow,
)
from hyperion import db
from hyperion.httpprotocol import PROTOCOL as HTTP_PROTOCOL

ROOT = Path(__file__).resolve().parent.parent


def migrate(url: str, target: str = "head") -> None:
    from hyperion import schema

    schema.upgrade(target, database_url=url)


def pg_admin(admin_url: URL, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(
            host=admin_url.host, port=admin_url.port or 5432, user=admin_url.username,
            password=admin_url.password, database=admin_url.database or "postgres",
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


async def truncate_all(engine: AsyncEngine) -> None:
    tables = [table.name for table in Base.metadata.sorted_tables]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            await connection.execute(text(f"TRUNCATE TABLE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - table names from our models


# Test data, inserted directly, each in its own committed transaction: for the states the services cannot
# make, or rows without the audit entries and messages the services add (tests/factories.py makes the rest).

async def association_create(*, slug: str = "bde", name: str = "BDE") -> int:
    async with db.write_session() as session, session.begin():
        return (await session.execute(
            insert(Association).returning(Association.id), {"slug": slug, "name": name, "description": ""}
        )).scalar_one()


async def user_create(*, email: str = "alice@etu.test", display_name: str = "Alice",
                      is_staff: bool = False, password_hash: str = "!",  # noqa: S107 - "!" is unusable
                      verified: bool = True) -> int:
    """An account; its address confirmed unless ``verified=False`` (as after sign-up, before the link)."""
    from events.models import utcnow

    async with db.write_session() as session, session.begin():
        return (await session.execute(insert(User).returning(User.id), {
            "email": email, "display_name": display_name, "password_hash": password_hash, "is_staff": is_staff,
            "email_verified_at": utcnow() if verified else None,
        })).scalar_one()


async def event_create(*, association_id: int, slug: str = "gala", title: str = "Gala",
                       starts_at: datetime | None = None, hours: float = 3, capacity: int | None = 50,
                       status: EventStatus = EventStatus.APPROVED, **columns) -> int:
    starts_at = starts_at or utcnow() + timedelta(days=7)
    values = {
        "slug": slug, "title": title, "association_id": association_id, "category": "party",
        "starts_at": starts_at, "ends_at": starts_at + timedelta(hours=hours), "capacity": capacity,
        "status": status, **columns,
    }
    async with db.write_session() as session, session.begin():
        return (await session.execute(insert(Event).returning(Event.id), values)).scalar_one()


async def registration_create_raw(*, event_id: int, user_id: int,
                                  status: RegistrationStatus = RegistrationStatus.CONFIRMED) -> int:
    async with db.write_session() as session, session.begin():
        return (await session.execute(insert(Registration).returning(Registration.id),
                                      {"event_id": event_id, "user_id": user_id, "status": status})).scalar_one()


# Waiting for an event.

STARTUP_WITHIN = 60  # seconds: how long a server may take to start on a loaded machine before a test gives up
EVENT_WITHIN = 60  # seconds: how long a test waits for the event it needs before it gives up


async def until(condition, *, within: float = EVENT_WITHIN, step: float = 0.01, what: str = "the condition"):
    """Wait for the event a test needs: call ``condition()`` (sync, or returning an awaitable) until it
    returns something true, and return that. The step is only how often to look; ``within`` is a generous
    deadline that only ends a test that would otherwise hang (on a loaded machine an event may take
    seconds): past it, an AssertionError says what never happened.

    This and ``until_sync`` are the suite's only sleeps on a timer that wait for something (the rule is
    checked by tests/test_suite_rules.py)."""
    deadline = asyncio.timeout(within)
    try:
        async with deadline:
            while True:
                value = condition()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(step)
    except TimeoutError:
        if deadline.expired():
            raise AssertionError(f"not within {within} s: {what}") from None
        raise


def until_sync(condition, *, within: float = STARTUP_WITHIN, step: float = 0.05, what: str = "the condition"):
    """``until`` for code without an event loop (starting a server before the test's loop uses it)."""
    deadline = time.monotonic() + within
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(step)
    return value


_heard_markers = itertools.count(1)


async def own_notifications_heard() -> None:
    """Wait until this process's listener has heard every NOTIFY committed so far. The writes a test makes on
    PostgreSQL also reach its own process through the listener, a moment later (on a loaded machine, after
    the test has gone on): a late one drops what the page store keeps of the students it names, and a test
    that checks what is kept must first let them all arrive. PostgreSQL delivers notifications in commit
    order, so once a marker sent now is heard, every earlier one has been. The marker names a student who
    cannot exist and drops only its own entry; a listener that was not yet connected drops everything when
    it connects, the marker's entry included."""
    from django.conf import settings

    from events.live.broadcast import CHANNEL, broadcaster
    from hyperion import pagecache

    if broadcaster.listener is None or settings.PAGE_CACHE_SECONDS <= 0:
        return  # nothing listens in this process, or nothing is kept: no notification can come late
    marker = -next(_heard_markers)
    key = ("test_notifications_heard", marker)
    pagecache.put(key, True, version=pagecache.version(), tags=(pagecache.user_tag(marker),), size=1,
                  exact=True)
    assert pagecache.get(key), "the page store kept nothing to wait on"
    async with db.write_session() as session:
        await session.execute(text("SELECT pg_notify(:channel, :payload)"),
                              {"channel": CHANNEL, "payload": f'["user", {marker}]'})
    await until(lambda: pagecache.get(key) is None, what="this process's listener hearing its own NOTIFY")


async def until_waiting_on_lock(database_url: str, application_name: str, count: int = 1) -> None:
    """Wait until ``count`` connections named ``application_name`` (a server's DB_APPLICATION_NAME) wait on a
    lock, as PostgreSQL shows them (pg_stat_activity): the requests they serve are stuck where the test put
    them."""
    url = make_url(database_url)
    # No prepared statements: in the PgBouncer pass this connection goes through its transaction pool.
    watcher = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                                    database=url.database, timeout=30, statement_cache_size=0)

    async def enough() -> bool:
        return await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() "
            "AND wait_event_type = 'Lock'", application_name) >= count

    try:
        await until(enough, what=f"{count} connection(s) of {application_name} waiting on a lock")
    finally:
        await watcher.close()


# Real servers.

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    def __init__(self, process: subprocess.Popen, base_url: str, log_path: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def threads(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def uvicorn_server(tmp_path: Path, *, env: dict[str, str] | None = None, extra_args: list[str] | None = None):
    """Run the real site under uvicorn (uvloop, httptools through the site's protocol) in a child process, as
    production does."""
    port = free_port()
    log_path = tmp_path / f"uvicorn-{port}.log"
    child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1",
                 "PYTHONWARNINGS": "default", "LOG_LEVEL": "INFO", **(env or {})}
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "uvicorn", "hyperion.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--loop", "uvloop", "--http", HTTP_PROTOCOL, "--ws", "none", "--lifespan", "on",
             *(extra_args or [])],
            cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited at startup:\n{server.log()}")
        try:
            httpx.get(f"{server.base_url}/static/css/site.css", timeout=5)
        except httpx.TransportError:
            return False
        return True

    try:
        try:
            until_sync(answers, what="uvicorn answering")
        except AssertionError as error:
            raise RuntimeError(f"{error}:\n{server.log()}") from None
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def engine_events(name: str):
    """Each time the engine fires ``name`` while the block runs, a list entry (its length counts them):
    "checkout" counts connections taken from the pool, "before_cursor_execute" the statements sent (their SQL)."""
    from sqlalchemy import event

    seen: list[object] = []

    def record(*args, **_kwargs) -> None:
        seen.append(args[2] if name == "before_cursor_execute" else args[1])

    engine = db.get_engine().sync_engine
    event.listen(engine, name, record)
    try:
        yield seen
    finally:
        event.remove(engine, name, record)


async def visitor_page(path: str, *, language: str = "en") -> str:
    """The page at ``path`` as a visitor without a session gets it (200 expected), in ``language``."""
    from django.conf import settings
    from django.test import AsyncClient

    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


async def client_as(user_id: int, *, language: str = "en"):
    """A test client logged in as ``user_id``, its pages in ``language``."""
    from django.conf import settings
    from django.test import AsyncClient

    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    await login(client, user_id)
    return client


async def login(client, user_id: int) -> str:
    """Log a test client in as ``user_id`` through a real server-side session."""
    from django.conf import settings

    from events.accounts import auth

    async with db.write_session() as session:
        token = await auth.session_create(session, user_id=user_id)
    client.cookies[settings.SESSION_COOKIE_NAME] = token
    return token
