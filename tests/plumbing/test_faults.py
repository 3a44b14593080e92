"""Faults against the real server (uvicorn child process, production settings from faults/settings.py):
a busy pool, the admission limit, the database dropping the site's connections under requests, a thousand
clients that give up mid-request, SIGTERM with requests and live streams open, SIGKILL in the middle of
writes. Each ends with the invariants of faults/invariants.py and a look at the server's log.

The longer, load-driven versions (a real PostgreSQL restart among them) are the harness: ``make faults``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url

from faults import load
from faults.invariants import check_invariants
from faults.logs import log_trouble
from tests import support

REGISTRATIONS_LOCK = "LOCK TABLE registrations IN SHARE ROW EXCLUSIVE MODE"  # blocks INSERT, not SELECT
EVENTS_LOCK = "LOCK TABLE events IN ACCESS EXCLUSIVE MODE"  # blocks every query on events


def _server_env(name: str, **overrides: str) -> dict[str, str]:
    """Production settings (the environment decides the pool), plain HTTP on loopback, and no stored public
    pages: these tests are about requests that reach Django and the database, which a visitor's stored page
    would not (tests/plumbing/test_publicpages.py tests those, outage included)."""
    return {"DJANGO_SETTINGS_MODULE": "faults.settings", "DB_APPLICATION_NAME": name, "PAGE_CACHE_SECONDS": "0",
            **overrides}


def _app_name(what: str) -> str:
    return f"hyperion-faults-{what}-{secrets.token_hex(3)}"


async def _pg_connect(database_url: str) -> asyncpg.Connection:
    url = make_url(database_url)
    return await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                                 database=url.database, timeout=10)


_watchers: dict[str, asyncpg.Connection] = {}


@pytest.fixture(scope="module", autouse=True)
async def _close_watchers():
    yield
    while _watchers:
        await _watchers.popitem()[1].close()


async def _activity(database_url: str, application_name: str) -> list[asyncpg.Record]:
    """The server's connections to this test database, as PostgreSQL sees them (one watching connection,
    kept for the module: polling must be cheap)."""
    watcher = _watchers.get(database_url)
    if watcher is None or watcher.is_closed():
        watcher = _watchers[database_url] = await _pg_connect(database_url)
    return await watcher.fetch(
        "SELECT pid, state, wait_event_type, query FROM pg_stat_activity "
        "WHERE application_name = $1 AND datname = current_database()", application_name)


async def _lock_waiters(database_url: str, application_name: str) -> int:
    return sum(row["wait_event_type"] == "Lock" for row in await _activity(database_url, application_name))


async def _waiting_on_lock(database_url: str, application_name: str, count: int = 1) -> None:
    """Wait until ``count`` of the server's connections wait on a lock: the requests are where the test needs
    them (PostgreSQL shows it; nothing to guess from the time)."""
    async def enough() -> bool:
        return await _lock_waiters(database_url, application_name) >= count

    await support.until(enough, what=f"{count} request(s) of the server waiting on the lock")


# uvicorn's trace log says what the server does as it does it: each connection made and lost, and each request
# as it reaches the application (where, with every turn taken, it joins the admission line at once).
TRACE = ["--log-level", "trace"]
STARTED = "Started scope="
CONNECTION_LOST = "HTTP connection lost"


async def _logged(server: support.RunningServer, needle: str, count: int = 1) -> None:
    """Wait until the server's log says ``needle`` (at least ``count`` times in all)."""
    await support.until(lambda: server.log().count(needle) >= count,
                        what=f"{needle!r} {count} time(s) in the server's log")


def _half_closed_sockets(pid: int) -> int:
    """Sockets of process ``pid`` that the other end has closed and the process has not closed yet
    (CLOSE_WAIT): a database connection ended by PostgreSQL that the server has not noticed yet."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if (target := os.readlink(fd)).startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    close_wait = "08"
    return sum(fields[3] == close_wait and fields[9] in inodes
               for table in ("/proc/net/tcp", "/proc/net/tcp6")
               for fields in (line.split() for line in Path(table).read_text().splitlines()[1:]))


class _Lock:
    """A lock the server's next write (or, for ``LOCK TABLE events``, read) must wait for, taken from
    here. SQLite has one writer: a ``BEGIN IMMEDIATE`` from here makes every write transaction wait."""

    def __init__(self, database_url: str, backend: str, pg_statement: str) -> None:
        self.database_url, self.backend, self.pg_statement = database_url, backend, pg_statement
        self.connection = None

    async def acquire(self) -> None:
        if self.backend == "postgres":
            self.connection = await _pg_connect(self.database_url)
            await self.connection.execute("BEGIN")
            await self.connection.execute(self.pg_statement)
        else:
            self.connection = sqlite3.connect(make_url(self.database_url).database, isolation_level=None, timeout=30)
            self.connection.execute("BEGIN IMMEDIATE")

    async def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        if self.backend == "postgres":
            await connection.execute("ROLLBACK")
            await connection.close()
        else:
            connection.execute("ROLLBACK")
            connection.close()


@contextlib.asynccontextmanager
async def _held_lock(database_url: str, backend: str, pg_statement: str):
    lock = _Lock(database_url, backend, pg_statement)
    await lock.acquire()
    try:
        yield lock
    finally:
        await lock.release()


# Pool exhaustion and the admission limit.

async def test_busy_pool_gives_a_503_with_retry_after_within_the_pool_timeout(tmp_path, backend, database_url):
    """Pool of one connection, held by a request stuck behind a lock: the next request waits
    DB_POOL_TIMEOUT (0.5 s), then gets the "try again" page, never hangs; once the lock goes, all is served."""
    cast = await load.seed(database_url, students=1)
    event, student = cast.events[0], cast.students[0]
    name = _app_name("pool")
    env = _server_env(name, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="0.5")
    # PostgreSQL: the event page's first query waits for the table lock. SQLite: a registration waits for
    # the write lock (BEGIN IMMEDIATE) while holding the pool's only connection.
    with support.uvicorn_server(tmp_path, env=env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20, headers={"Accept-Language": "en"}) as client:
            assert (await client.get(f"/events/{event.slug}/")).status_code == 200
            browser = load.Student(server.base_url, student)
            async with _held_lock(database_url, backend, EVENTS_LOCK):
                if backend == "postgres":
                    holder = asyncio.create_task(client.get(f"/events/{event.slug}/"))
                    await _waiting_on_lock(database_url, name)
                else:  # waits in BEGIN IMMEDIATE, which SQLite does not show: the refused page below does
                    holder = asyncio.create_task(browser.act(event, "register"))

                async def refused() -> tuple[httpx.Response, float] | None:
                    """A page load, answered once the holder has the pool's only connection (at once on
                    PostgreSQL); until then (SQLite) the pages are served and the next one is tried."""
                    assert not holder.done()
                    started = time.monotonic()
                    probe = await client.get(f"/events/{event.slug}/")
                    return (probe, time.monotonic() - started) if probe.status_code != 200 else None

                probe, waited = await support.until(refused, what="a page load refused by the busy pool")
            held = await asyncio.wait_for(holder, timeout=60)
            after = await client.get(f"/events/{event.slug}/")
            await browser.aclose()
        log = server.log()
    assert probe.status_code == 503, probe.text[:500]
    assert probe.headers["Retry-After"].isdigit()
    assert "Try again" in probe.text and "Traceback" not in probe.text
    assert 0.4 < waited < 2.5, f"waited {waited:.2f} s for a pool with a 0.5 s timeout"
    if backend == "postgres":
        assert held.status_code == 200  # the stuck request finished once the lock went
    else:
        assert held == load.ACK_CONFIRMED
    assert after.status_code == 200
    assert not log_trouble(log), log


async def test_admission_limit_answers_503_beyond_limit_concurrency(tmp_path):
    """uvicorn --limit-concurrency N (manage.py runserver passes settings.SERVER_LIMIT_CONCURRENCY): with N
    requests in progress (posts whose bodies never come), one more request is refused at once with the
    site's 503 page; served again when they close. Connections with no request do not count
    (tests/plumbing/test_server_protocol.py)."""
    limit = 4
    with support.uvicorn_server(tmp_path, env=_server_env(_app_name("limit")),
                                extra_args=["--limit-concurrency", str(limit), *TRACE]) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        arrived = server.log().count(STARTED)
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(limit)]
        held_from = [f"127.0.0.1:{writer.get_extra_info('sockname')[1]} - " for _reader, writer in held]
        for _reader, writer in held:
            writer.write(b"POST /account/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n")
            await writer.drain()
        await _logged(server, STARTED, arrived + limit)  # the requests reached the application
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            started = time.monotonic()
            refused = await client.get("/")
            refused_in = time.monotonic() - started
            for _reader, writer in held:
                writer.close()
            for client_address in held_from:
                await _logged(server, f"{client_address}{CONNECTION_LOST}")
            served = await client.get("/")
    assert refused.status_code == 503 and refused_in < 1.0
    assert refused.headers["Retry-After"].isdigit() and refused.headers["Content-Type"].startswith("text/html")
    assert "The site is very busy" in refused.text
    assert served.status_code == 200


QUEUE_TIMEOUT = 3  # seconds: ample for a page render to free a turn on a loaded machine


@pytest.mark.postgres_only
async def test_requests_beyond_the_in_flight_limit_wait_their_turn_then_get_a_503_past_the_queue_timeout(
        tmp_path, database_url):
    """SERVER_MAX_IN_FLIGHT=2: two page loads stuck behind a lock hold both turns; the next requests wait
    outside Django (no third connection is taken), are served as soon as a turn frees, and one that waits
    past SERVER_QUEUE_TIMEOUT gets a 503 with Retry-After. An open live-seat stream holds no turn."""
    cast = await load.seed(database_url, students=1)
    page = f"/events/{cast.events[0].slug}/"
    name = _app_name("inflight")
    env = _server_env(name, SERVER_MAX_IN_FLIGHT="2", SERVER_QUEUE_TIMEOUT=str(QUEUE_TIMEOUT), DB_POOL_SIZE="5")
    with support.uvicorn_server(tmp_path, env=env, extra_args=TRACE) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20, headers={"Accept-Language": "en"}) as client:
            stream = client.stream("GET", f"/events/{cast.events[0].slug}/seats/")
            await stream.__aenter__()  # stays open throughout
            assert (await client.get(page)).status_code == 200
            async with _held_lock(database_url, "postgres", EVENTS_LOCK):  # a turn frees in time
                stuck = [asyncio.create_task(client.get(page)) for _ in range(2)]
                await _waiting_on_lock(database_url, name, count=2)
                arrived = server.log().count(STARTED)
                queued = asyncio.create_task(client.get(page))
                await _logged(server, STARTED, arrived + 1)  # it reached the app: in line, both turns are taken
                waiting = await _lock_waiters(database_url, name)
            answers = await asyncio.wait_for(asyncio.gather(*stuck, queued), timeout=60)
            async with _held_lock(database_url, "postgres", EVENTS_LOCK):  # no turn frees in time
                stuck = [asyncio.create_task(client.get(page)) for _ in range(2)]
                await _waiting_on_lock(database_url, name, count=2)

                async def timed(path: str) -> tuple[httpx.Response, float]:
                    started = time.monotonic()
                    return await client.get(path), time.monotonic() - started

                # The login page needs no database, yet waits for a turn; the page load waits outside the
                # database: both are answered by the admission line, not by Django.
                (refused, refused_in), (refused_page, _) = await asyncio.gather(timed("/account/login/"),
                                                                                 timed(page))
                waiting_after = await _lock_waiters(database_url, name)
            answers += await asyncio.wait_for(asyncio.gather(*stuck), timeout=60)
            served = await client.get("/account/login/")
            await stream.__aexit__(None, None, None)
        log = server.log()
    assert refused.status_code == 503 and refused.headers["Retry-After"].isdigit(), refused.text
    assert "try again" in refused.text and QUEUE_TIMEOUT - 0.2 < refused_in < QUEUE_TIMEOUT + 5
    assert refused_page.status_code == 503 and "The site is very busy" in refused_page.text, refused_page.text
    assert waiting == waiting_after == 2  # the queued page loads waited outside the database
    assert [answer.status_code for answer in answers] == [200] * 5
    assert served.status_code == 200
    assert not log_trouble(log), log


@pytest.mark.postgres_only
async def test_requests_whose_clients_left_while_queued_are_not_served(tmp_path, database_url):
    """Students who gave up while their registration waited for a turn (closed the tab, timed out) are not
    registered behind their back (Django's handler reads the disconnect where it expects the body), and
    the queue they leave costs the next visitors nothing."""
    cast = await load.seed(database_url, students=6)
    event = cast.events[0]
    name = _app_name("gaveup")
    env = _server_env(name, SERVER_MAX_IN_FLIGHT="1", DB_POOL_SIZE="4")
    with support.uvicorn_server(tmp_path, env=env, extra_args=TRACE) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            students = [load.Student(server.base_url, student) for student in cast.students[1:]]
            async with _held_lock(database_url, "postgres", EVENTS_LOCK):
                stuck = asyncio.create_task(client.get(f"/events/{event.slug}/"))  # holds the only turn
                await _waiting_on_lock(database_url, name)
                arrived = server.log().count(STARTED)
                leaving = [asyncio.create_task(student.act(event, "register")) for student in students]
                await _logged(server, STARTED, arrived + len(students))  # all in line for the turn
                lost = server.log().count(CONNECTION_LOST)
                for task in leaving:  # the browsers give up: their connections close
                    task.cancel()
                await asyncio.gather(*leaving, return_exceptions=True)
                for student in students:
                    await student.aclose()
                await _logged(server, CONNECTION_LOST, lost + len(students))  # the server saw them leave
            assert (await stuck).status_code == 200
            staying = load.Student(server.base_url, cast.students[0])
            registered = await staying.act(event, "register")
            await staying.aclose()
        log = server.log()
    connection = await _pg_connect(database_url)
    try:
        registrants = await connection.fetchval("SELECT count(*) FROM registrations WHERE event_id = $1", event.id)
    finally:
        await connection.close()
    assert registered == load.ACK_CONFIRMED
    assert registrants == 1  # only the student who stayed
    assert not log_trouble(log), log


@pytest.mark.postgres_only
async def test_registrations_whose_clients_left_while_in_the_events_line_are_not_written(tmp_path, database_url):
    """Registrations for one event wait in the process's line while a batch is written (group commit,
    events/registration/services.py). Students who give up while in that line are not registered behind
    their back; the one whose batch was already being written is, and so is the next who stays."""
    cast = await load.seed(database_url, students=6)
    event = cast.events[0]
    name = _app_name("leftline")
    with support.uvicorn_server(tmp_path, env=_server_env(name, DB_POOL_SIZE="4"), extra_args=TRACE) as server:
        first, *others, last = [load.Student(server.base_url, student) for student in cast.students]
        event_lock = f"SELECT 1 FROM events WHERE id = {int(event.id)} FOR UPDATE"  # noqa: S608 - an integer
        async with _held_lock(database_url, "postgres", event_lock):
            writing = asyncio.create_task(first.act(event, "register"))  # its batch waits for the event's lock
            await _waiting_on_lock(database_url, name)
            arrived = server.log().count(STARTED)
            leaving = [asyncio.create_task(student.act(event, "register")) for student in others]
            await _logged(server, STARTED, arrived + len(others))  # in the app: behind the batch being written
            lost = server.log().count(CONNECTION_LOST)
            for task in leaving:  # the browsers give up: their connections close
                task.cancel()
            await asyncio.gather(*leaving, return_exceptions=True)
            for student in others:
                await student.aclose()
            await _logged(server, CONNECTION_LOST, lost + len(others))  # the server saw them leave
        written = await writing
        stayed = await last.act(event, "register")
        for student in (first, last):
            await student.aclose()
        log = server.log()
    connection = await _pg_connect(database_url)
    try:
        registrants = set(await connection.fetchval(
            "SELECT array_agg(user_id) FROM registrations WHERE event_id = $1", event.id))
    finally:
        await connection.close()
    assert written == stayed == load.ACK_CONFIRMED
    assert registrants == {cast.students[0].id, cast.students[-1].id}
    assert not log_trouble(log), log


def test_runserver_sets_the_admission_limit_and_graceful_timeout_from_settings(monkeypatch):
    from django.conf import settings
    from django.core.management import call_command

    from events.management.commands import runserver

    calls = []
    monkeypatch.setattr(runserver.uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    call_command("runserver", "127.0.0.1:8765", "--noreload")
    assert settings.SERVER_LIMIT_CONCURRENCY > 0 and settings.SERVER_GRACEFUL_TIMEOUT > 0
    assert calls[0]["limit_concurrency"] == settings.SERVER_LIMIT_CONCURRENCY
    assert calls[0]["timeout_graceful_shutdown"] == settings.SERVER_GRACEFUL_TIMEOUT
    assert calls[0]["http"] == "hyperion.httpprotocol:HyperionHttpProtocol"
    readme = (support.ROOT / "README.md").read_text()
    assert "SERVER_LIMIT_CONCURRENCY" in readme and "DB_POOL_TIMEOUT" in readme


# The database going away under requests.

@pytest.mark.postgres_only
async def test_connections_killed_under_requests_give_503_then_the_site_serves_again(tmp_path, database_url):
    """What a database restart does to the pool, without restarting the shared server: every connection of
    the site is terminated (pg_terminate_backend: SQLSTATE 57P01, what ``pg_ctl restart -m fast`` sends) while
    page loads wait on a lock and registrations wait inside their transaction. Each of those answers the
    "try again" page (503, Retry-After), never a 500; the registrations did not happen; and the next
    requests are served at once on fresh connections (stale pooled ones replaced), without a restart.
    The full restart under load, with its recovery time, is the harness's db-restart scenario."""
    cast = await load.seed(database_url, students=3)
    event = cast.events[0]
    page = f"/events/{event.slug}/"
    name = _app_name("terminate")

    async def terminate_all() -> None:
        connection = await _pg_connect(database_url)
        try:
            await connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE application_name = $1 AND datname = current_database()", name)
        finally:
            await connection.close()

    with support.uvicorn_server(tmp_path, env=_server_env(name)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20, headers={"Accept-Language": "en"}) as client:
            assert {(await client.get(page)).status_code for _ in range(3)} == {200}
            students = [load.Student(server.base_url, student) for student in cast.students]
            async with _held_lock(database_url, "postgres", EVENTS_LOCK):
                reads = [asyncio.create_task(client.get(page)) for _ in range(3)]
                await _waiting_on_lock(database_url, name, count=3)
                await terminate_all()
                read_answers = await asyncio.wait_for(asyncio.gather(*reads), timeout=60)
            async with _held_lock(database_url, "postgres", REGISTRATIONS_LOCK):
                writes = [asyncio.create_task(student.act(event, "register")) for student in students]

                async def stuck_or_answered() -> bool:
                    return all(write.done() for write in writes) or await _lock_waiters(database_url, name) >= 1

                # The first registration's batch waits for the table lock inside its transaction; the others
                # wait in the event's line (events/registration/services.py) and write the next batch, which
                # waits in its turn: each batch's connection is terminated under it.
                while not all(write.done() for write in writes):
                    await support.until(stuck_or_answered, what="a registration batch waiting on the lock")
                    await terminate_all()
                write_answers = await asyncio.wait_for(asyncio.gather(*writes), timeout=60)
            started = time.monotonic()
            after = [(await client.get(page)).status_code for _ in range(5)]
            served_in = time.monotonic() - started
            registered = await students[0].act(event, "register")
            for student in students:
                await student.aclose()
        log = server.log()
    assert [answer.status_code for answer in read_answers] == [503, 503, 503], [a.text[:300] for a in read_answers]
    assert all(answer.headers["Retry-After"].isdigit() and "Try again" in answer.text for answer in read_answers)
    assert write_answers == [load.E503] * 3
    assert after == [200] * 5 and served_in < 3
    assert registered == load.ACK_CONFIRMED
    assert await check_invariants(database_url) == []
    assert not log_trouble(log), log


@pytest.mark.postgres_only
async def test_idle_pooled_connections_closed_by_the_server_are_replaced_without_a_failed_page(
        tmp_path, database_url):
    """A restart (here pg_terminate_backend) closes the pool's idle connections: the next pages are served
    on fresh ones, none answers 503 (the check at checkout is local: asyncpg saw the socket close)."""
    cast = await load.seed(database_url, students=1)
    page = f"/events/{cast.events[0].slug}/"
    name = _app_name("idle")
    with support.uvicorn_server(tmp_path, env=_server_env(name, DB_POOL_SIZE="4")) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            assert {answer.status_code for answer in await asyncio.gather(*(client.get(page) for _ in range(8)))} \
                == {200}
            connection = await _pg_connect(database_url)
            try:
                pids = {row["pid"] for row in await connection.fetch(
                    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND datname = current_database()", name)}
            finally:
                await connection.close()

            async def noticed() -> bool:
                """The sessions ended, and the server has closed its end of each (asyncpg saw them close)."""
                left = {row["pid"] for row in await _activity(database_url, name)}
                return not pids & left and _half_closed_sockets(server.pid) == 0

            await support.until(noticed, what="the server noticing its connections closed")
            after = [answer.status_code for answer in await asyncio.gather(*(client.get(page) for _ in range(8)))]
        log = server.log()
    assert len(pids) >= 2  # several pooled connections were there to be closed
    assert after == [200] * 8
    assert not log_trouble(log), log


# Clients that give up mid-request.

ABORTS = 1000
ROUNDS = 10


@pytest.mark.postgres_only
async def test_a_thousand_clients_giving_up_mid_request_leave_the_pool_clean(tmp_path, database_url):
    """1,000 registration POSTs aborted mid-flight (stuck behind a lock on registrations, or racing the lock's
    release so that some are cut during their commit). Afterwards: no 'idle in transaction', both pool
    connections usable at once (nothing left checked out), and every registration whole or absent."""
    cast = await load.seed(database_url, students=ABORTS, events=4, capacity=100)
    name = _app_name("abort")
    env = _server_env(name, DB_POOL_SIZE="2", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="10", LOG_LEVEL="WARNING")
    rng = random.Random(20261125)
    aborted, answered = 0, Counter()
    with support.uvicorn_server(tmp_path, env=env) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        csrf = load.csrf_secret()
        per_round = ABORTS // ROUNDS
        for number in range(ROUNDS):
            students = cast.students[number * per_round:(number + 1) * per_round]
            requests = [load.raw_post(port, f"/events/{cast.events[index % 4].slug}/register/", student.token, csrf)
                        for index, student in enumerate(students)]
            async with _held_lock(database_url, "postgres", REGISTRATIONS_LOCK) as lock:
                release_first = number % 2 == 1

                async def stuck(lock=lock, release_first=release_first) -> None:
                    # Both pool connections inside a registration transaction, the rest waiting for one.
                    await _waiting_on_lock(database_url, name, count=2)
                    if release_first:  # let them run on: the aborts land anywhere, the commit included
                        await lock.release()
                        await asyncio.sleep(rng.uniform(0, 0.03))  # simulates an abort at a random moment

                aborted += await load.abort_requests(port, requests, until=stuck, answered=answered)
        # Settled: nothing left inside a transaction. A leaked one stays "idle in transaction" for good, so
        # this wait fails on it; a second look afterwards could catch the outbox worker between its BEGIN and
        # its first query (a transient state of every transaction), so the snapshot kept is the settled one.
        activity: list[asyncpg.Record] = []

        async def settled() -> bool:
            activity[:] = await _activity(database_url, name)
            return all(row["state"] == "idle" for row in activity)

        await support.until(settled, what="the server's connections settled, none inside a transaction")
        # Both pool connections can be checked out at once: two page loads both reach a table lock.
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            async with _held_lock(database_url, "postgres", EVENTS_LOCK):
                pages = [asyncio.create_task(client.get(f"/events/{cast.events[0].slug}/")) for _ in range(2)]
                await _waiting_on_lock(database_url, name, count=2)  # both connections checked out
            statuses = [(await page).status_code for page in pages]
        log = server.log()
    assert aborted >= 0.9 * ABORTS, f"only {aborted} of {ABORTS} were aborted mid-flight ({answered})"
    assert len(activity) <= 2, activity
    assert statuses == [200, 200]
    assert await check_invariants(database_url) == []
    assert not log_trouble(log), log


# Graceful shutdown.

GRACEFUL = 6


async def test_sigterm_finishes_in_flight_requests_and_closes_live_streams_cleanly(tmp_path, backend, database_url):
    """SIGTERM with a registration stuck behind a lock and 5 live-seat streams open: the registration
    completes, the streams end cleanly (a complete response, not a cut connection) well within the graceful
    timeout, the engine is disposed and the process exits in time, with nothing leaked or logged as an error."""
    cast = await load.seed(database_url, students=1)
    event, student = cast.events[0], cast.students[0]
    name = _app_name("term")
    problems: list[str] = []
    with support.uvicorn_server(tmp_path, env=_server_env(name),
                                extra_args=["--timeout-graceful-shutdown", str(GRACEFUL), *TRACE]) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            streams = []
            for _ in range(5):
                opened = client.stream("GET", f"/events/{event.slug}/seats/")
                response = await opened.__aenter__()
                chunks = response.aiter_raw()
                first = await asyncio.wait_for(anext(chunks), timeout=60)
                streams.append((opened, chunks, first))

            async def read_to_end(chunks) -> tuple[str, float]:
                try:
                    async for _chunk in chunks:
                        pass
                except httpx.HTTPError as error:
                    return f"cut: {error!r}"[:160], time.monotonic() - terminated_at
                return "complete", time.monotonic() - terminated_at

            browser = load.Student(server.base_url, student)
            async with _held_lock(database_url, backend, REGISTRATIONS_LOCK):
                arrived = server.log().count(STARTED)
                in_flight = asyncio.create_task(browser.act(event, "register"))
                if backend == "postgres":
                    await _waiting_on_lock(database_url, name)
                else:  # SQLite does not show its BEGIN IMMEDIATE waiting: the request is in the app, in flight
                    await _logged(server, STARTED, arrived + 1)
                terminated_at = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                endings = [asyncio.create_task(read_to_end(chunks)) for _opened, chunks, _first in streams]
                await _logged(server, "Waiting for connections to close")  # the lock goes during the shutdown
            outcome = await asyncio.wait_for(in_flight, timeout=GRACEFUL + 5)
            stream_endings = await asyncio.wait_for(asyncio.gather(*endings), timeout=GRACEFUL + 5)
            exit_code = await asyncio.to_thread(server.process.wait, GRACEFUL + 5)
            exit_after = time.monotonic() - terminated_at
            for opened, _chunks, _first in streams:
                with contextlib.suppress(httpx.HTTPError):
                    await opened.__aexit__(None, None, None)
            await browser.aclose()
        log = server.log()
    if outcome != load.ACK_CONFIRMED:
        problems.append(f"the in-flight registration ended as {outcome!r}, not confirmed")
    for ending, after in stream_endings:
        if ending != "complete":
            problems.append(f"a live stream was {ending} {after:.1f} s after SIGTERM")
        elif after > GRACEFUL - 2:
            problems.append(f"a live stream only ended {after:.1f} s after SIGTERM (graceful timeout {GRACEFUL} s)")
    if exit_code not in (0, -signal.SIGTERM):
        problems.append(f"exit code {exit_code}")
    if exit_after > GRACEFUL + 2:
        problems.append(f"exited {exit_after:.1f} s after SIGTERM")
    if "Application shutdown complete" not in log or "database engine disposed" not in log:
        problems.append("no clean application shutdown in the log")
    if "timeout graceful shutdown exceeded" in log:
        problems.append("uvicorn had to cancel tasks: 'timeout graceful shutdown exceeded'")
    problems += log_trouble(log)
    if backend == "postgres" and (left := await _activity(database_url, name)):
        problems.append(f"{len(left)} connection(s) of the server left in pg_stat_activity")
    assert not problems, "\n".join(problems) + "\n--- server log ---\n" + log[-4000:]
    assert await check_invariants(database_url) == []


# SIGKILL in the middle of writes.

async def test_sigkill_mid_writes_then_restart_leaves_no_partial_rows(tmp_path, backend, database_url):
    """40 students register and leave at random on 3 events of 8 seats; the server is SIGKILLed mid-way and
    started again. Nothing partial remains (every invariant holds), nothing acknowledged is lost, and the
    restarted server serves and takes registrations."""
    cast = await load.seed(database_url, students=40, events=3, capacity=8)
    name = _app_name("kill")
    stats, ledger = load.Stats(), load.Ledger()
    rng = random.Random(7)

    async def student_loop(student: load.SeededStudent, stop: asyncio.Event, base_url: str) -> None:
        browser = load.Student(base_url, student, timeout=10, stats=stats, ledger=ledger)
        try:
            while not stop.is_set():
                event = rng.choice(cast.events)
                await browser.act(event, rng.choice(("register", "register", "leave")))
        finally:
            await browser.aclose()

    env = _server_env(name, DB_POOL_SIZE="5", DB_MAX_OVERFLOW="5")
    with support.uvicorn_server(tmp_path, env=env) as server:
        stop = asyncio.Event()
        loops = [asyncio.create_task(student_loop(student, stop, server.base_url)) for student in cast.students]
        async def enough_acknowledged() -> bool:
            return ledger.acknowledged() >= 40

        await support.until(enough_acknowledged, what="40 acknowledged registrations")
        acknowledged_before_kill = ledger.acknowledged()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        stop.set()  # each student ends with the request the kill cut
        await asyncio.gather(*loops)
    killed_log = server.log()
    if backend == "postgres":  # the database ended the dead server's sessions and rolled them back
        await support.until(lambda: _gone(database_url, name), what="the killed server's sessions ending")
    violations = await check_invariants(database_url)
    lost = ledger.lost(await load.registrations(database_url))
    with support.uvicorn_server(tmp_path, env=env) as restarted:
        again = load.Student(restarted.base_url, cast.students[0])
        page = await again.get(f"/events/{cast.events[0].slug}/")
        await again.act(cast.events[0], "leave")
        second = await again.act(cast.events[0], "register")
        await again.aclose()
        restarted_log = restarted.log()
    assert acknowledged_before_kill >= 40 and stats.errors.get(load.E500, 0) == 0, (stats, killed_log[-3000:])
    assert violations == [], violations
    assert lost == [], lost
    assert page.status_code == 200 and second in (load.ACK_CONFIRMED, load.ACK_WAITLISTED)
    assert await check_invariants(database_url) == []
    assert not log_trouble(killed_log) and not log_trouble(restarted_log), restarted_log


async def _gone(database_url: str, name: str) -> bool:
    return not await _activity(database_url, name)
