"""The fault harness: ``make faults`` (``.venv/bin/python -m faults.run``).

Starts its own throw-away PostgreSQL (never the one on 5432) and the real site under uvicorn against it,
drives students at it (browse and register, an asyncio client), and runs the faults one after the other:

  db-restart       PostgreSQL restarted (pg_ctl restart -m fast), then stopped for a few seconds, under load
  pool-exhaustion  every pool connection stuck behind a lock; then more connections than the admission limit
  client-cancel    1,000 registration requests whose clients give up mid-flight
  sigkill          the app SIGKILLed in the middle of writes, three times, restarted each time, under load
  sigterm          SIGTERM with a slow registration in flight, live-seat streams open and students browsing
  slow-headers     2,050 connections that never finish their headers (slowloris), past the concurrency limit

After each: the invariants (faults/invariants.py) and what was lost (acknowledged answers the database
contradicts). Prints, per scenario, requests sent, errors by kind, recovery time, invariant checks passed
and lost, and writes faults/results/latest.md. Bounded: each scenario has a time limit, and everything it
started (servers, PostgreSQL, temporary folders) is stopped and removed at the end, even on error.
Exit status 1 if any scenario failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "faults.settings"

import asyncpg  # noqa: E402
import django  # noqa: E402
import httpx  # noqa: E402

django.setup()
# The harness's own output is its report: no per-request lines from httpx, no migration chatter. (The
# servers it starts log at INFO: their shutdown lines are part of what the sigterm scenario checks.)
logging.getLogger().setLevel(logging.WARNING)
for _noisy in ("httpx", "alembic"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

from events.models import RegistrationStatus  # noqa: E402
from faults import load  # noqa: E402
from faults.invariants import InvariantReport, invariant_report  # noqa: E402
from faults.logs import expected_outage_logs, log_trouble  # noqa: E402
from faults.pg import ThrowawayPostgres  # noqa: E402
from faults.server import AppServer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
REGISTRATIONS_LOCK = "LOCK TABLE registrations IN SHARE ROW EXCLUSIVE MODE"
EVENTS_LOCK = "LOCK TABLE events IN ACCESS EXCLUSIVE MODE"
RECOVERY_LIMIT = 10.0  # seconds: "within seconds of the database coming back"


@dataclass
class Result:
    name: str
    title: str
    stats: load.Stats = field(default_factory=load.Stats)
    recovery: list[tuple[str, float | None]] = field(default_factory=list)
    invariants: InvariantReport | None = None
    lost: list[str] | None = None
    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems and self.invariants is not None and not self.invariants.violations \
            and self.lost == []

    def recovery_text(self) -> str:
        if not self.recovery:
            return "-"
        return "; ".join(f"{label}: {'never' if value is None else f'{value:.2f} s'}" for label, value in self.recovery)


@dataclass
class Context:
    pg: ThrowawayPostgres
    url: str
    logs: Path
    args: argparse.Namespace
    servers: list[AppServer] = field(default_factory=list)

    def server(self, name: str, *, env: dict[str, str] | None = None, extra_args: list[str] | None = None) -> AppServer:
        # No stored public pages: every scenario is about requests that reach Django and the database, which
        # a visitor's page answered from memory would not (tests/plumbing/test_publicpages.py covers those).
        server = AppServer(self.logs, env={"DATABASE_URL": self.url, "DB_APPLICATION_NAME": name,
                                           "PAGE_CACHE_SECONDS": "0", **(env or {})},
                           extra_args=extra_args)
        self.servers.append(server)
        return server

    async def activity(self, application_name: str) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(host="127.0.0.1", port=self.pg.port, user="postgres",
                                           database=self.pg_database, timeout=10)
        try:
            return await connection.fetch(
                "SELECT state, wait_event_type FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database()", application_name)
        finally:
            await connection.close()

    async def sessions_gone(self, application_name: str, within: float) -> int:
        """Wait until PostgreSQL has no session of this server left; returns how many remain."""
        deadline = time.monotonic() + within
        while True:
            left = len(await self.activity(application_name))
            if not left or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.05)

    @property
    def pg_database(self) -> str:
        return self.url.rsplit("/", 1)[1]

    async def waiting_on_lock(self, application_name: str, count: int, within: float = 5) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            rows = await self.activity(application_name)
            if sum(row["wait_event_type"] == "Lock" for row in rows) >= count:
                return True
            await asyncio.sleep(0.02)
        return False

    @contextlib.asynccontextmanager
    async def lock(self, statement: str):
        holder = Holder(self, statement)
        await holder.acquire()
        try:
            yield holder
        finally:
            await holder.release()


class Holder:
    """A table lock held from the harness's own connection."""

    def __init__(self, context: Context, statement: str) -> None:
        self.context, self.statement, self.connection = context, statement, None

    async def acquire(self) -> None:
        self.connection = await asyncpg.connect(host="127.0.0.1", port=self.context.pg.port, user="postgres",
                                                database=self.context.pg_database, timeout=10)
        await self.connection.execute("BEGIN")
        await self.connection.execute(self.statement)

    async def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.execute("ROLLBACK")
            await connection.close()


async def finish_checks(context: Context, result: Result, *, servers: list[AppServer], ledger: load.Ledger | None,
                        retry_after_required: bool = True) -> None:
    """What every scenario checks at the end: answers, logs, invariants, what was lost."""
    stats = result.stats
    if stats.errors.get(load.E500):
        result.problems.append(f"{stats.errors[load.E500]} answer(s) 500 or above other than 503")
    if stats.tracebacks:
        result.problems.append(f"{stats.tracebacks} page(s) showed a traceback")
    if retry_after_required and stats.missing_retry_after:
        result.problems.append(f"{stats.missing_retry_after} 503 answer(s) without Retry-After")
    logs = "".join(server.logs() for server in servers)
    trouble = Counter(problem[:90] for problem in log_trouble(logs))
    for problem, count in trouble.most_common(4):
        result.problems.append(f"server log: {count} × {problem}")
    outage_logs = expected_outage_logs(logs)
    if outage_logs:
        result.facts.append(f"503s logged by the site as 'database unavailable' (warning + traceback): {outage_logs}")
    result.invariants = await invariant_report(context.url)
    if ledger is not None:
        result.lost = ledger.lost(await load.registrations(context.url))
        result.facts.append(f"acknowledged writes checked for loss: {ledger.acknowledged()}")


def merge(into: load.Stats, other: load.Stats) -> None:
    into.sent += other.sent
    into.statuses.update(other.statuses)
    into.errors.update(other.errors)
    into.missing_retry_after += other.missing_retry_after
    into.tracebacks += other.tracebacks


# Scenarios.

def _window_text(window: tuple[float, float] | None) -> str:
    return "none" if window is None else f"from +{window[0]:.2f} s to +{window[1]:.2f} s after the fault"


async def scenario_db_restart(context: Context) -> Result:
    result = Result("db-restart", "PostgreSQL restarted (restart -m fast), then stopped for "
                                  f"{context.args.outage:g} s, while students browse and register")
    cast = await load.seed(context.url, students=400, events=8, capacity=25, prefix="r")
    server = context.server("hyperion-faults-restart")
    await asyncio.to_thread(server.start)
    ledger = load.Ledger()
    crowd = load.Crowd(server.base_url, cast, size=context.args.crowd, seed=1, stats=result.stats, ledger=ledger)
    prober = load.Prober(server.base_url, f"/events/{cast.events[0].slug}/")
    crowd.start()
    prober.start()
    try:
        await asyncio.sleep(3)
        # 1. A quick restart.
        fault_at = time.monotonic()
        await asyncio.to_thread(context.pg.restart, "fast")
        up_at = await context.pg.wait_accepting()
        await asyncio.sleep(4)
        result.recovery.append(("after restart -m fast", prober.first_ok_after(up_at)))
        result.facts.append(f"restart -m fast: database down→up in {up_at - fault_at:.2f} s; probe failures "
                            f"{_window_text(prober.failing_window(fault_at))}")
        # 2. An outage of a few seconds.
        fault_at = time.monotonic()
        await asyncio.to_thread(context.pg.stop, "fast")
        await asyncio.sleep(context.args.outage)
        await asyncio.to_thread(context.pg.start)
        up_at = await context.pg.wait_accepting()
        await asyncio.sleep(5)
        result.recovery.append((f"after {context.args.outage:g} s outage", prober.first_ok_after(up_at)))
        result.facts.append(f"{context.args.outage:g} s outage: database down→up in {up_at - fault_at:.2f} s; "
                            f"probe failures {_window_text(prober.failing_window(fault_at))}")
    finally:
        await crowd.finish()
        await prober.finish()
    merge(result.stats, prober.stats)
    for label, seconds in result.recovery:
        if seconds is None or seconds > RECOVERY_LIMIT:
            result.problems.append(f"not serving again {RECOVERY_LIMIT:g} s after the database came back ({label})")
    if not result.stats.errors.get(load.E503) and not result.stats.errors.get(load.E500):
        result.notes.append("no request failed at all during the outage (cached pages?)")
    left = [row for row in await context.activity("hyperion-faults-restart") if row["state"] == "idle in transaction"]
    if left:
        result.problems.append(f"{len(left)} connection(s) idle in transaction after the load")
    await finish_checks(context, result, servers=[server], ledger=ledger)
    server.terminate()
    return result


async def scenario_pool_exhaustion(context: Context) -> Result:
    limit, pool_timeout, queue_timeout = 30, 1.0, 1.0
    result = Result("pool-exhaustion", f"pool of 2 (timeout {pool_timeout:g} s) stuck behind a table lock for 4 s "
                                       f"under 20 clients, 8 let in at once (queue timeout {queue_timeout:g} s); "
                                       f"then {limit} uploads in progress against --limit-concurrency {limit}")
    cast = await load.seed(context.url, students=5, events=2, capacity=10, prefix="p")
    name = "hyperion-faults-pool"
    server = context.server(name, env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0",
                                       "DB_POOL_TIMEOUT": str(pool_timeout), "SERVER_MAX_IN_FLIGHT": "8",
                                       "SERVER_QUEUE_TIMEOUT": str(queue_timeout)},
                            extra_args=["--limit-concurrency", str(limit)])
    await asyncio.to_thread(server.start)
    page = f"/events/{cast.events[0].slug}/"
    waits_503: list[float] = []
    stuck: list[asyncio.Task] = []

    async def hammer(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            result.stats.sent += 1
            try:
                response = await client.get(page)
            except httpx.HTTPError as error:
                result.stats.record_error(error)
                continue
            result.stats.record_response(response)
            if response.status_code == 503:
                waits_503.append(time.monotonic() - started)
            await asyncio.sleep(0.01)

    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, headers={"Accept-Language": "en"},
                                 limits=httpx.Limits(max_connections=25)) as client:
        async with context.lock(EVENTS_LOCK) as holder:
            stuck = [asyncio.create_task(client.get(page)) for _ in range(2)]
            if not await context.waiting_on_lock(name, 2):
                result.problems.append("the two first requests never reached the lock")
            stop = asyncio.Event()
            hammers = [asyncio.create_task(hammer(client, stop)) for _ in range(20)]
            await asyncio.sleep(4)
            stop.set()
            await asyncio.gather(*hammers)
            await holder.release()
            released_at = time.monotonic()
        stuck_answers = [await task for task in stuck]
        result.stats.sent += len(stuck_answers)
        for response in stuck_answers:
            result.stats.record_response(response)
        first_ok = None
        while first_ok is None and time.monotonic() - released_at < 10:
            result.stats.sent += 1
            response = await client.get(page)
            result.stats.record_response(response)
            if response.status_code == 200:
                first_ok = time.monotonic() - released_at
    result.recovery.append(("after the lock went", first_ok))
    result.facts.append(f"pool phase: {len(waits_503)} requests answered 503 after waiting "
                        f"{min(waits_503, default=0):.2f}-{max(waits_503, default=0):.2f} s (queue timeout "
                        f"{queue_timeout:g} s, then pool timeout {pool_timeout:g} s); the 2 stuck requests "
                        f"answered {[r.status_code for r in stuck_answers]}")
    if not waits_503:
        result.problems.append("no request was refused while the pool was stuck")
    elif max(waits_503) > queue_timeout + pool_timeout + 2:
        result.problems.append(f"a request waited {max(waits_503):.1f} s for a 503 (queue timeout "
                               f"{queue_timeout:g} s, pool timeout {pool_timeout:g} s)")
    if [r.status_code for r in stuck_answers] != [200, 200]:
        result.problems.append("the requests stuck behind the lock did not finish with 200")
    # Admission: the limit counts requests in progress (uploads whose bodies never come: larger than
    # MAX_REQUEST_BODY, the site drains them outside the admission queue); one more is refused at once.
    admission = load.Stats()
    held = []
    upload = (f"POST {page} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              f"Content-Length: {3 * 1024 * 1024}\r\n\r\n").encode()
    for _ in range(limit):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(upload)
        held.append((reader, writer))
    refused_in: list[float] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        for _ in range(200):  # until the held uploads have reached the site (10 s at most)
            if (await client.get("/healthz")).status_code == 503:
                break
            await asyncio.sleep(0.05)
        for _ in range(20):
            started = time.monotonic()
            admission.sent += 1
            response = await client.get(page)
            admission.record_response(response)
            refused_in.append(time.monotonic() - started)
        for _reader, writer in held:
            writer.close()
        await asyncio.sleep(0.3)
        admission.sent += 1
        after = await client.get(page)
        admission.record_response(after)
    result.facts.append(f"admission phase: {admission.statuses.get(503, 0)}/20 requests refused with 503 in at most "
                        f"{max(refused_in):.3f} s with {limit} uploads in progress; then {after.status_code}")
    if admission.statuses.get(503, 0) != 20 or after.status_code != 200:
        result.problems.append("the admission limit did not refuse every extra request, or did not recover")
    merge(result.stats, admission)
    await finish_checks(context, result, servers=[server], ledger=None)
    result.lost = []  # nothing acknowledged to lose: no writes
    server.terminate()
    return result


async def scenario_client_cancel(context: Context) -> Result:
    total, rounds = 1000, 10
    result = Result("client-cancel", f"{total} registration POSTs aborted mid-flight (pool of 2, {rounds} rounds: "
                                     "stuck behind a lock, or racing its release into the commit)")
    cast = await load.seed(context.url, students=total, events=4, capacity=100, prefix="c")
    name = "hyperion-faults-cancel"
    server = context.server(name, env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10",
                                       "LOG_LEVEL": "WARNING"})
    await asyncio.to_thread(server.start)
    rng = random.Random(3)  # noqa: S311 - timing jitter
    csrf = load.csrf_secret()
    answered: Counter = Counter()
    aborted = 0
    per_round = total // rounds
    for number in range(rounds):
        students = cast.students[number * per_round:(number + 1) * per_round]
        requests = [load.raw_post(server.port, f"/events/{cast.events[index % 4].slug}/register/", student.token, csrf)
                    for index, student in enumerate(students)]
        async with context.lock(REGISTRATIONS_LOCK) as holder:
            async def stuck(holder=holder, number=number) -> None:
                if not await context.waiting_on_lock(name, 2):
                    result.problems.append(f"round {number}: requests never reached the lock")
                release_first = number % 2 == 1
                if release_first:
                    await holder.release()
                    await asyncio.sleep(rng.uniform(0, 0.03))

            aborted += await load.abort_requests(server.port, requests, until=stuck, answered=answered)
        result.stats.sent += len(requests)
    settled_at = time.monotonic()
    while True:
        activity = await context.activity(name)
        if all(row["state"] == "idle" for row in activity) or time.monotonic() - settled_at > 5:
            break
        await asyncio.sleep(0.05)
    idle_in_transaction = sum(row["state"] == "idle in transaction" for row in activity)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
        async with context.lock(EVENTS_LOCK):
            pages = [asyncio.create_task(client.get(f"/events/{cast.events[0].slug}/")) for _ in range(2)]
            both = await context.waiting_on_lock(name, 2)
        statuses = [(await page).status_code for page in pages]
    result.stats.sent += 2
    rows = await load.registrations(context.url)
    saved = sum(status in (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED) for status in rows.values())
    result.facts += [
        f"aborted before any answer: {aborted}; answered before the abort: {sum(answered.values())}",
        f"registrations saved: {saved} (of which committed although the client never read the answer: "
        f"{max(saved - answered.get('HTTP/1.1 302', 0), 0)})",
        f"after: idle in transaction {idle_in_transaction}, server connections {len(activity)}; both pool "
        f"connections checked out at once: {'yes' if both else 'NO'} → pool checked-out back to 0; pages {statuses}",
    ]
    if aborted < 0.9 * total:
        result.problems.append(f"only {aborted} requests were aborted mid-flight")
    if idle_in_transaction:
        result.problems.append(f"{idle_in_transaction} connection(s) idle in transaction")
    if not both or statuses != [200, 200]:
        result.problems.append("a pool connection stayed checked out after the aborts")
    await finish_checks(context, result, servers=[server], ledger=None)
    result.lost = []  # answers were never read: nothing was acknowledged (whole-or-nothing is in the invariants)
    server.terminate()
    return result


async def scenario_sigkill(context: Context) -> Result:
    cycles = 3
    result = Result("sigkill", f"the app SIGKILLed mid-writes {cycles} times and restarted, students registering "
                               "and leaving throughout")
    cast = await load.seed(context.url, students=200, events=5, capacity=15, prefix="k")
    name = "hyperion-faults-kill"
    server = context.server(name)
    await asyncio.to_thread(server.start)
    ledger = load.Ledger()
    crowd = load.Crowd(server.base_url, cast, size=60, seed=4, stats=result.stats, ledger=ledger,
                       write_share=0.8, pause=(0.0, 0.03), timeout=5)
    rng = random.Random(4)  # noqa: S311 - timing jitter
    crowd.start()
    leftovers = []
    try:
        for cycle in range(cycles):
            # Kill in the middle of writes: once this server life has acknowledged some, at a random moment.
            target = ledger.acknowledged() + 15
            deadline = time.monotonic() + 30
            while True:
                if ledger.acknowledged() >= target or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            acknowledged = ledger.acknowledged()
            server.kill()
            killed_at = time.monotonic()
            leftovers.append(await context.sessions_gone(name, within=5))
            gone_in = time.monotonic() - killed_at
            await asyncio.to_thread(server.start)
            result.recovery.append((f"serving {cycle + 1} after kill + restart", time.monotonic() - killed_at))
            result.facts.append(f"kill {cycle + 1}: {acknowledged} writes acknowledged so far; PostgreSQL ended the "
                                f"dead server's sessions in {gone_in:.2f} s")
        await asyncio.sleep(1.5)
    finally:
        await crowd.finish()
    if any(leftovers):
        result.problems.append(f"sessions of a killed server still open: {leftovers}")
    result.facts.append("socket errors are the requests in flight or sent while the server was down")
    await finish_checks(context, result, servers=[server], ledger=ledger)
    server.terminate()
    return result


async def scenario_sigterm(context: Context) -> Result:
    graceful = context.args.graceful
    result = Result("sigterm", f"SIGTERM (--timeout-graceful-shutdown {graceful}) with a slow registration in flight, "
                               "5 live-seat streams open and students browsing")
    cast = await load.seed(context.url, students=60, events=3, capacity=20, prefix="t")
    name = "hyperion-faults-term"
    server = context.server(name, extra_args=["--timeout-graceful-shutdown", str(graceful)])
    await asyncio.to_thread(server.start)
    ledger = load.Ledger()
    crowd = load.Crowd(server.base_url, cast, size=20, seed=5, stats=result.stats, ledger=ledger, write_share=0.1)
    crowd.start()
    event = cast.events[0]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        streams = []
        for _ in range(5):
            opened = client.stream("GET", f"/events/{event.slug}/seats/")
            response = await opened.__aenter__()
            chunks = response.aiter_raw()
            await asyncio.wait_for(anext(chunks), timeout=10)
            streams.append((opened, chunks))
        result.stats.sent += 5
        await asyncio.sleep(1)

        async def read_to_end(chunks) -> tuple[str, float]:
            try:
                async for _chunk in chunks:
                    pass
            except httpx.HTTPError as error:
                return f"cut ({type(error).__name__})", time.monotonic() - terminated_at
            return "complete", time.monotonic() - terminated_at

        slow = load.Student(server.base_url, cast.students[-1], stats=result.stats, ledger=ledger)
        async with context.lock(REGISTRATIONS_LOCK):
            in_flight = asyncio.create_task(slow.act(event, "register"))
            if not await context.waiting_on_lock(name, 1):
                result.problems.append("the slow registration never reached the lock")
            terminated_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            endings = [asyncio.create_task(read_to_end(chunks)) for _opened, chunks in streams]
            await asyncio.sleep(1.0)
        outcome = await asyncio.wait_for(in_flight, timeout=graceful + 10)
        stream_endings = await asyncio.wait_for(asyncio.gather(*endings), timeout=graceful + 10)
        exit_code = await asyncio.to_thread(server.process.wait, graceful + 10)
        exited_in = time.monotonic() - terminated_at
        for opened, _chunks in streams:
            with contextlib.suppress(httpx.HTTPError):
                await opened.__aexit__(None, None, None)
        await slow.aclose()
    await crowd.finish()
    log = server.log()
    left = await context.activity(name)
    result.recovery.append(("exit after SIGTERM", exited_in))
    result.facts += [
        f"in-flight registration: {outcome}",
        "live streams: " + ", ".join(f"{how} after {after:.1f} s" for how, after in stream_endings),
        f"exit code {exit_code} after {exited_in:.1f} s; server connections left in pg_stat_activity: {len(left)}",
        "socket errors are students' clicks after the server stopped listening",
    ]
    if outcome != load.ACK_CONFIRMED:
        result.problems.append(f"the in-flight registration ended as {outcome}")
    if any(how != "complete" for how, _after in stream_endings):
        result.problems.append("live streams were cut instead of ending cleanly")
    if any(after > graceful - 1 for _how, after in stream_endings):
        result.problems.append("live streams held the shutdown until the graceful timeout")
    if "timeout graceful shutdown exceeded" in log:
        result.problems.append("uvicorn cancelled tasks: 'timeout graceful shutdown exceeded'")
    if exit_code not in (0, -signal.SIGTERM) or exited_in > graceful + 3:
        result.problems.append(f"exit code {exit_code} after {exited_in:.1f} s")
    if "Application shutdown complete" not in log or "database engine disposed" not in log:
        result.problems.append("no clean lifespan shutdown (engine disposal) in the log")
    if left:
        result.problems.append(f"{len(left)} server connection(s) left after exit")
    await finish_checks(context, result, servers=[server], ledger=ledger)
    return result


class SlowHeaders:
    """A slowloris: ``count`` connections, opened at ``rate`` a second, each sending a request line and then one
    header line every ``every`` seconds, never the blank line that ends the headers; a connection the server
    closes is opened again after a pause (what attack tools do)."""

    def __init__(self, port: int, *, count: int, rate: float, every: float, header_timeout: float) -> None:
        self.port, self.count, self.rate, self.every = port, count, rate, every
        self.header_timeout = header_timeout
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.opened = self.open_now = self.refused = 0
        self.closed_timeout = self.closed_early = 0  # by the server: after the header timeout, or before

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._one(index)) for index in range(self.count)]

    async def finish(self) -> None:
        self.stop.set()
        for task in self.tasks:  # a task may be in a read that lasts until its next header line
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def closed(self, opened_at: float) -> None:
        if time.monotonic() - opened_at >= self.header_timeout * 0.95:
            self.closed_timeout += 1
        else:
            self.closed_early += 1

    async def _one(self, index: int) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), index / self.rate)
        while not self.stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.refused += 1
                await asyncio.sleep(1)
                continue
            self.opened += 1
            self.open_now += 1
            opened_at = time.monotonic()
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n")
                while not self.stop.is_set():
                    try:
                        data = await asyncio.wait_for(reader.read(4096), self.every)
                    except TimeoutError:
                        writer.write(b"X-Slow: a\r\n")
                        continue
                    if not data:
                        self.closed(opened_at)
                        break
            except OSError:
                self.closed(opened_at)
            finally:
                self.open_now -= 1
                writer.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 1.0)


@dataclass
class Sample:
    """Legitimate requests during one phase: latencies of the 200s and every status."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    health: Counter = field(default_factory=Counter)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")

    def milliseconds(self, fraction: float) -> str:
        return f"{self.percentile(fraction) * 1000:.0f} ms" if self.latencies else "- (no 200)"

    def text(self) -> str:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items(), key=str))
        health = ", ".join(f"{code}: {count}" for code, count in sorted(self.health.items(), key=str))
        return (f"{sum(self.statuses.values())} page loads ({statuses}), p50 {self.milliseconds(0.5)}, "
                f"p99 {self.milliseconds(0.99)}; /healthz every 100 ms: {health}")


async def legitimate(base_url: str, page: str, seconds: float, *, clients: int, stats: load.Stats) -> Sample:
    """``clients`` visitors loading ``page`` one after the other, each on its own connection, and a health
    check every 100 ms, for ``seconds``."""
    sample = Sample()
    stop_at = time.monotonic() + seconds

    async def visitor() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=httpx.Limits(max_connections=1)) as client:
            while time.monotonic() < stop_at:
                started = time.monotonic()
                stats.sent += 1
                try:
                    response = await client.get(page)
                except httpx.HTTPError as error:
                    sample.statuses[stats.record_error(error)] += 1
                    continue
                stats.record_response(response)
                sample.statuses[response.status_code] += 1
                if response.status_code == 200:
                    sample.latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.05)  # a visitor's pause between pages

    async def health() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            while time.monotonic() < stop_at:
                stats.sent += 1
                try:
                    response = await client.get("/healthz")
                except httpx.HTTPError as error:
                    sample.health[stats.record_error(error)] += 1
                else:
                    stats.record_response(response)
                    sample.health[response.status_code] += 1
                await asyncio.sleep(0.1)

    await asyncio.gather(health(), *(visitor() for _ in range(clients)))
    return sample


async def scenario_slow_headers(context: Context) -> Result:
    limit, count, rate, every, clients = 2000, 2050, 250.0, 15.0, 10
    result = Result("slow-headers", f"{count:,} slow-header connections (one header line every {every:g} s, "
                                    f"opened at {rate:g}/s, reopened when closed) against --limit-concurrency "
                                    f"{limit:,} (the default), while {clients} visitors load an event page and "
                                    "/healthz is checked every 100 ms; the same attack on uvicorn's own "
                                    "protocol (--http httptools) for comparison")
    cast = await load.seed(context.url, students=1, events=2, capacity=10, prefix="s")
    page = f"/events/{cast.events[0].slug}/"
    server = context.server("hyperion-faults-slow", extra_args=["--limit-concurrency", str(limit)])
    await asyncio.to_thread(server.start)
    ramp = count / rate + 1
    header_timeout = 10.0  # SERVER_HEADER_TIMEOUT's default, which this server runs with

    await legitimate(server.base_url, page, 2, clients=clients, stats=load.Stats())  # warm-up, not counted
    before = await legitimate(server.base_url, page, 5, clients=clients, stats=result.stats)
    attack = SlowHeaders(server.port, count=count, rate=rate, every=every, header_timeout=header_timeout)
    attack.start()
    open_samples: list[int] = []

    async def sample_open(seconds: float) -> None:
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            open_samples.append(attack.open_now)
            await asyncio.sleep(0.25)

    # Measured from the start of the attack to past the first header timeouts and reconnections.
    during, _ = await asyncio.gather(legitimate(server.base_url, page, ramp + header_timeout + 5, clients=clients,
                                                stats=result.stats),
                                     sample_open(ramp + header_timeout + 5))
    await attack.finish()
    after = await legitimate(server.base_url, page, 5, clients=clients, stats=result.stats)
    result.facts += [
        f"before the attack: {before.text()}",
        f"during the attack: {during.text()}",
        f"after the attack: {after.text()}",
        f"attack on the site's server: {attack.opened:,} connections opened, at most {max(open_samples, default=0):,} "
        f"open at once (median {sorted(open_samples)[len(open_samples) // 2] if open_samples else 0:,}); closed by "
        f"the server: {attack.closed_timeout:,} at the {header_timeout:g} s header timeout and {attack.closed_early:,} "
        f"earlier, past the cap of {limit:,} connections without a request (SERVER_MAX_IDLE_CONNECTIONS); "
        f"refused: {attack.refused}",
    ]
    if during.statuses.keys() - {200} or during.health.keys() - {200}:
        result.problems.append("visitors or /healthz got something else than 200 during the attack")
    if not during.latencies or during.percentile(0.99) > 5:
        result.problems.append("visitors waited more than 5 s (p99) during the attack")
    if attack.closed_timeout == 0:
        result.problems.append("no slow connection was closed by the header timeout")
    await finish_checks(context, result, servers=[server], ledger=None)
    result.lost = []  # nothing acknowledged to lose: no writes
    server.terminate()

    # The same attack on uvicorn's own httptools protocol: what the site did before (not judged).
    stock = AppServer(context.logs, env={"DATABASE_URL": context.url, "DB_APPLICATION_NAME": "hyperion-faults-stock",
                                         "PAGE_CACHE_SECONDS": "0"},
                      extra_args=["--limit-concurrency", str(limit)])
    stock.http = "httptools"
    context.servers.append(stock)
    await asyncio.to_thread(stock.start)
    stock_attack = SlowHeaders(stock.port, count=count, rate=rate, every=every, header_timeout=header_timeout)
    stock_attack.start()
    await asyncio.sleep(ramp)
    stock_open = stock_attack.open_now
    stock_during = await legitimate(stock.base_url, page, 5, clients=clients, stats=load.Stats())
    await stock_attack.finish()
    stock.terminate()
    result.facts.append(f"uvicorn's own protocol under the same attack, once {stock_open:,} "
                        f"connections were open: {stock_during.text()}; closed by the server: "
                        f"{stock_attack.closed_timeout + stock_attack.closed_early}")
    return result


SCENARIOS: dict[str, Callable[[Context], Awaitable[Result]]] = {
    "db-restart": scenario_db_restart,
    "pool-exhaustion": scenario_pool_exhaustion,
    "client-cancel": scenario_client_cancel,
    "sigkill": scenario_sigkill,
    "sigterm": scenario_sigterm,
    "slow-headers": scenario_slow_headers,
}


# Running and reporting.

def machine() -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for module in ("django", "sqlalchemy", "asyncpg", "uvicorn"):
        with contextlib.suppress(Exception):
            versions[module] = __import__(module).__version__
    return [
        f"{platform.node()}: {os.cpu_count()} CPU(s), {cpu}, Linux {platform.release()}",
        f"load average at start: {', '.join(f'{value:.2f}' for value in os.getloadavg())} (shared machine)",
        f"Python {platform.python_version()}, " + ", ".join(f"{name} {version}" for name, version in versions.items()),
    ]


def print_result(result: Result) -> None:
    status = "PASS" if result.passed else "FAIL"
    print(f"\n== {result.name}: {result.title} ({result.seconds:.0f} s) ==")
    print(f"requests sent: {result.stats.sent} | errors: {result.stats.errors_text()}")
    print(f"recovery: {result.recovery_text()}")
    invariants = result.invariants.summary() if result.invariants else "not checked"
    print(f"invariants: {invariants} | lost: {'not checked' if result.lost is None else len(result.lost)}")
    for fact in result.facts:
        print(f"  - {fact}")
    for note in result.notes:
        print(f"  note: {note}")
    for violation in (result.invariants.violations if result.invariants else [])[:10]:
        print(f"  VIOLATION {violation}")
    for item in (result.lost or [])[:10]:
        print(f"  LOST {item}")
    for problem in result.problems:
        print(f"  PROBLEM {problem}")
    print(f"result: {status}")


def markdown(results: list[Result], started: datetime, seconds: float, header: list[str], pg_version: str) -> str:
    load_end = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        "# Fault harness: latest run",
        "",
        f"`make faults` on {started:%Y-%m-%d %H:%M} UTC, {seconds:.0f} s in all: a throw-away {pg_version} on "
        "127.0.0.1 (fsync off) and the site under uvicorn (uvloop, httptools through hyperion/httpprotocol.py, one "
        "worker), with the production "
        "settings read from the environment (faults/settings.py). "
        f"{sum(result.passed for result in results)}/{len(results)} scenarios passed.",
        "",
        "Machine: " + "; ".join(header) + f"; load average at the end: {load_end}.",
        "",
        "| scenario | requests | 503 | 500 | socket | timeout | recovery | invariants | lost | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        errors = result.stats.errors
        invariants = f"{result.invariants.passed}/{result.invariants.checks}" if result.invariants else "-"
        lines.append(
            f"| {result.name} | {result.stats.sent} | {errors.get('503', 0)} | {errors.get('500', 0)} | "
            f"{errors.get('socket', 0)} | {errors.get('timeout', 0)} | {result.recovery_text()} | {invariants} | "
            f"{'-' if result.lost is None else len(result.lost)} | {'PASS' if result.passed else '**FAIL**'} |")
    lines += [
        "",
        "Reading the figures: *requests* are all the requests the clients sent; *503* are \"try again\" pages "
        "(they must carry Retry-After), *500* any other 5xx, "
        "*socket* connections refused or cut (the server was down or exiting), *timeout* no answer within the "
        "client's timeout. *Recovery* (db-restart) runs from the moment PostgreSQL accepts connections again to "
        "the end of the first 200 on an event page (a probe every 50 ms); for sigkill, from the kill to the "
        "restarted server's first answer. *Invariants*: the 11 checks of faults/invariants.py on the whole "
        "database afterwards. *Lost*: answers the site acknowledged (a confirmed seat, a place in line, a "
        "leave) that the database contradicts afterwards; unanswered requests may have happened or not and "
        "are left to the invariants.",
    ]
    for result in results:
        lines += ["", f"## {result.name}: {'PASS' if result.passed else 'FAIL'}", "", result.title + ".", ""]
        lines.append(f"- requests sent: {result.stats.sent}; answers: "
                     + ", ".join(f"{code}: {count}" for code, count in sorted(result.stats.statuses.items())))
        lines.append(f"- errors by kind: {result.stats.errors_text()}; 503 without Retry-After: "
                     f"{result.stats.missing_retry_after}; pages with a traceback: {result.stats.tracebacks}")
        lines.append(f"- recovery: {result.recovery_text()}")
        if result.invariants:
            lines.append(f"- invariant checks: {result.invariants.summary()}")
        lines.append(f"- lost: {'not checked' if result.lost is None else len(result.lost)}")
        lines += [f"- {fact}" for fact in result.facts]
        lines += [f"- note: {note}" for note in result.notes]
        lines += [f"- VIOLATION: {violation}" for violation in (result.invariants.violations[:10]
                                                                if result.invariants else [])]
        lines += [f"- LOST: {item}" for item in (result.lost or [])[:10]]
        lines += [f"- **PROBLEM**: {problem}" for problem in result.problems]
    lines.append("")
    return "\n".join(lines)


async def run_all(pg: ThrowawayPostgres, logs: Path, args: argparse.Namespace) -> list[Result]:
    await pg.execute("CREATE DATABASE hyperion_faults")
    url = pg.url("hyperion_faults")
    from hyperion import schema

    await asyncio.to_thread(schema.upgrade, "head", url)
    context = Context(pg, url, logs, args)
    results = []
    for name in args.only or list(SCENARIOS):
        if not pg.running:
            await asyncio.to_thread(pg.start)
        await load.truncate(url)
        began = time.monotonic()
        try:
            result = await asyncio.wait_for(SCENARIOS[name](context), timeout=args.scenario_timeout)
        except Exception as error:  # a scenario that crashes is a failed scenario; the others still run
            result = Result(name, "crashed")
            result.problems.append(f"{type(error).__name__}: {error}")
            result.facts.append(traceback.format_exc(limit=6).replace("\n", " | ")[-1500:])
        finally:
            for server in context.servers:
                await asyncio.to_thread(server.terminate, 15)
            context.servers.clear()
        result.seconds = time.monotonic() - began
        print_result(result)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), help="run only this scenario (repeatable)")
    parser.add_argument("--crowd", type=int, default=40, help="students browsing and registering at once")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds PostgreSQL stays down in db-restart")
    parser.add_argument("--graceful", type=int, default=8, help="--timeout-graceful-shutdown of the sigterm scenario")
    parser.add_argument("--scenario-timeout", type=float, default=180, help="seconds before a scenario is abandoned")
    parser.add_argument("--no-write", action="store_true", help="do not write faults/results/latest.md")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs (the folder is printed)")
    args = parser.parse_args(argv)

    # SIGTERM (and SIGINT) end the run through the normal clean-up path.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = datetime.now(UTC)
    began = time.monotonic()
    header = machine()
    print("Fault harness\n" + "\n".join(header))
    logs = Path(tempfile.mkdtemp(prefix="hyperion-faults-logs."))
    try:
        with ThrowawayPostgres() as pg:
            pg_version = subprocess.run([str(pg.bin / "postgres"), "--version"], capture_output=True,  # noqa: S603
                                        text=True, check=False).stdout.strip() or "PostgreSQL"
            print(f"{pg_version} on 127.0.0.1:{pg.port} ({pg.folder})")
            results = asyncio.run(run_all(pg, logs, args))
    finally:
        if args.keep_logs:
            print(f"server logs kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    seconds = time.monotonic() - began
    failed = [result.name for result in results if not result.passed]
    print(f"\n{len(results) - len(failed)}/{len(results)} scenarios passed in {seconds:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.md").write_text(markdown(results, started, seconds, header, pg_version))
        print(f"written: {RESULTS / 'latest.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
