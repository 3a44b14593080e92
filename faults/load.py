"""Test data and a student's client for the fault tests and the harness.

- ``seed``: an association, approved events and students, each student with a live session (the token
  goes in the cookie), inserted straight into the database through an engine of our own.
- ``Student``: one httpx client per student with its session and a CSRF secret, doing one request at a
  time (like a person), and recording what the site answered in a ``Ledger``.
- ``Ledger.lost``: what the site acknowledged (a confirmed seat, a place in line, a leave) and the
  database does not show afterwards. Unanswered requests (503, socket error, timeout, killed server) may
  have happened or not: they make the expected state unknown until the next acknowledged answer.
- ``abort_requests``: open raw connections, send requests, and close the sockets mid-flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import secrets
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import httpx
from sqlalchemy import insert, select, text
from sqlalchemy.pool import NullPool

from events.models import (
    Association,
    AuthSession,
    Base,
    Event,
    EventStatus,
    Registration,
    RegistrationStatus,
    User,
    utcnow,
)

SESSION_COOKIE = "hyperion_session"
CSRF_COOKIE = "csrftoken"


def csrf_secret() -> str:
    """What Django's CSRF cookie holds (32 letters and digits); the form sends the same value back."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


@dataclass(frozen=True)
class SeededEvent:
    id: int
    slug: str
    capacity: int | None


@dataclass(frozen=True)
class SeededStudent:
    id: int
    email: str
    token: str = field(repr=False)


@dataclass
class Cast:
    association_id: int
    events: list[SeededEvent]
    students: list[SeededStudent]
    staff_id: int | None = None


def engine_for(url: str):
    from hyperion import db

    return db.engine_create(url, poolclass=NullPool)


async def seed(url: str, *, students: int, events: int = 1, capacity: int | None = 20, prefix: str = "f",
               staff: bool = False) -> Cast:
    """Insert the cast of a scenario (events start in 10 days: registration open, reminders in the future)."""
    engine = engine_for(url)
    now = utcnow()
    try:
        async with engine.begin() as connection:
            association_id = (await connection.execute(insert(Association).returning(Association.id), {
                "slug": f"{prefix}-asso", "name": f"Association {prefix}", "description": "",
                "created_at": now})).scalar_one()
            event_rows = []
            for number in range(events):
                starts_at = now + timedelta(days=10, hours=number)
                event_rows.append({
                    "slug": f"{prefix}-event-{number}", "title": f"Soirée {prefix} {number}",
                    "association_id": association_id, "category": "party", "location": "Foyer",
                    "description": "", "starts_at": starts_at, "ends_at": starts_at + timedelta(minutes=30),
                    "all_day": False, "capacity": capacity, "status": EventStatus.APPROVED, "decision_reason": "",
                    "sequence": 0, "created_at": now, "updated_at": now})
            event_ids = list((await connection.execute(
                insert(Event).returning(Event.id, sort_by_parameter_order=True), event_rows)).scalars())
            user_rows = [{"email": f"{prefix}{number}@etu.test", "display_name": f"Student {prefix}{number}",
                          "password_hash": "!", "is_staff": False, "is_active": True, "language": "en",
                          "created_at": now, "email_verified_at": now, "email_opt_outs": []}
                         for number in range(students)]
            if staff:
                user_rows.append({"email": f"{prefix}-staff@etu.test", "display_name": "Staff", "password_hash": "!",
                                  "is_staff": True, "is_active": True, "language": "en", "created_at": now,
                                  "email_verified_at": now, "email_opt_outs": []})
            user_ids = list((await connection.execute(
                insert(User).returning(User.id, sort_by_parameter_order=True), user_rows)).scalars())
            tokens = [secrets.token_urlsafe(32) for _ in range(students)]
            if tokens:
                await connection.execute(insert(AuthSession), [
                    {"token_hash": hashlib.sha256(token.encode()).hexdigest(), "user_id": user_id,
                     "created_at": now, "expires_at": now + timedelta(days=2)}
                    for token, user_id in zip(tokens, user_ids, strict=False)])
    finally:
        await engine.dispose()
    return Cast(
        association_id=association_id,
        events=[SeededEvent(event_id, row["slug"], capacity)
                for event_id, row in zip(event_ids, event_rows, strict=True)],
        students=[SeededStudent(user_id, row["email"], token)
                  for user_id, row, token in zip(user_ids, user_rows, tokens, strict=False)],
        staff_id=user_ids[-1] if staff else None,
    )


async def registrations(url: str) -> dict[tuple[int, int], RegistrationStatus]:
    """(user_id, event_id) → status, as the database has them now."""
    engine = engine_for(url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(
                select(Registration.user_id, Registration.event_id, Registration.status))).all()
    finally:
        await engine.dispose()
    return {(row.user_id, row.event_id): RegistrationStatus(row.status) for row in rows}


# What the site answered.

ACK_CONFIRMED, ACK_WAITLISTED, ACK_LEFT, ACK_REFUSED = "confirmed", "waitlisted", "left", "refused"
# Error kinds (the figures of the harness): unanswered requests.
E503, E500, ESOCKET, ETIMEOUT, EOTHER = "503", "500", "socket", "timeout", "other"
ERROR_KINDS = (E503, E500, ESOCKET, ETIMEOUT, EOTHER)


def flash_levels(response: httpx.Response) -> list[int]:
    """The levels of the messages the response stored in Django's messages cookie (cookie storage), oldest
    first (messages not shown yet stay in the cookie: the answer to this request is the last one)."""
    from django.contrib.messages.storage.cookie import CookieStorage

    levels: list[int] = []
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        with contextlib.suppress(Exception):
            cookie.load(header)
        if "messages" in cookie and cookie["messages"].value:
            decoded = CookieStorage(None)._decode(cookie["messages"].value) or []
            levels.extend(message.level for message in decoded if hasattr(message, "level"))
    return levels


def classify(action: str, response: httpx.Response) -> str:
    """An acknowledgement (confirmed, waitlisted, left, refused) or an error kind."""
    from django.contrib import messages

    if response.status_code == 503:
        return E503
    if response.status_code >= 500:
        return E500
    if response.status_code != 302:
        return EOTHER
    levels = flash_levels(response)
    level = levels[-1] if levels else None
    if level == messages.ERROR:
        return ACK_REFUSED
    if action == "register":
        return {messages.SUCCESS: ACK_CONFIRMED, messages.WARNING: ACK_WAITLISTED}.get(level, EOTHER)
    return ACK_LEFT if level == messages.SUCCESS else EOTHER


@dataclass
class Stats:
    """Requests sent and how they ended, for one scenario."""

    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    missing_retry_after: int = 0
    tracebacks: int = 0

    def record_response(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 503:
            self.errors[E503] += 1
            if not response.headers.get("Retry-After", "").isdigit():
                self.missing_retry_after += 1
        elif response.status_code >= 500:
            self.errors[E500] += 1
        if "Traceback" in response.text:
            self.tracebacks += 1

    def record_error(self, error: Exception) -> str:
        kind = ETIMEOUT if isinstance(error, httpx.TimeoutException) else ESOCKET
        self.errors[kind] += 1
        return kind

    def errors_text(self) -> str:
        return ", ".join(f"{kind}: {self.errors.get(kind, 0)}" for kind in ERROR_KINDS)


@dataclass
class Ledger:
    """Per (user_id, event_id), the answers to that student's requests, in order."""

    attempts: dict[tuple[int, int], list[str]] = field(default_factory=dict)

    def record(self, user_id: int, event_id: int, outcome: str) -> None:
        self.attempts.setdefault((user_id, event_id), []).append(outcome)

    def expected(self) -> dict[tuple[int, int], str | None]:
        """What the database must show for each key: "confirmed", "waitlisted" (or promoted), "absent",
        or None when an unanswered request leaves it open."""
        result: dict[tuple[int, int], str | None] = {}
        for key, outcomes in self.attempts.items():
            state: str | None = "absent"
            for outcome in outcomes:
                if outcome in (ACK_CONFIRMED, ACK_WAITLISTED):
                    state = outcome
                elif outcome == ACK_LEFT:
                    state = "absent"
                elif outcome == ACK_REFUSED:
                    pass  # nothing changed
                else:
                    state = None  # may or may not have happened
            result[key] = state
        return result

    def acknowledged(self) -> int:
        return sum(outcome in (ACK_CONFIRMED, ACK_WAITLISTED, ACK_LEFT)
                   for outcomes in self.attempts.values() for outcome in outcomes)

    def lost(self, rows: dict[tuple[int, int], RegistrationStatus]) -> list[str]:
        """Acknowledged answers the database contradicts: a confirmed seat or a place in line that is not
        there, or a leave that did not happen."""
        problems = []
        for key, state in self.expected().items():
            status = rows.get(key)
            if state == ACK_CONFIRMED and status != RegistrationStatus.CONFIRMED:
                problems.append(f"user {key[0]} event {key[1]}: acknowledged confirmed, database has {status}")
            elif state == ACK_WAITLISTED and status not in (RegistrationStatus.WAITLISTED,
                                                            RegistrationStatus.CONFIRMED):
                problems.append(f"user {key[0]} event {key[1]}: acknowledged waitlisted, database has {status}")
            elif state == "absent" and status not in (None, RegistrationStatus.CANCELLED):
                problems.append(f"user {key[0]} event {key[1]}: acknowledged leave, database has {status}")
        return problems


class Student:
    """A logged-in student's browser: one request at a time, cookies kept, redirects not followed."""

    def __init__(self, base_url: str, student: SeededStudent, *, timeout: float = 15,
                 stats: Stats | None = None, ledger: Ledger | None = None) -> None:
        self.student = student
        self.csrf = csrf_secret()
        self.client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, follow_redirects=False,
            cookies={SESSION_COOKIE: student.token, CSRF_COOKIE: self.csrf},
            headers={"Accept-Language": "en"})
        self.stats = stats or Stats()
        self.ledger = ledger if ledger is not None else Ledger()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def get(self, path: str) -> httpx.Response | None:
        self.stats.sent += 1
        try:
            response = await self.client.get(path)
        except httpx.HTTPError as error:
            self.stats.record_error(error)
            return None
        self.stats.record_response(response)
        return response

    async def act(self, event: SeededEvent, action: str) -> str:
        """POST register or leave; returns (and records) the acknowledgement or the error kind."""
        self.stats.sent += 1
        body = {"csrfmiddlewaretoken": self.csrf, "confirm_overlap": "yes"}
        try:
            response = await self.client.post(f"/events/{event.slug}/{action}/", data=body)
        except httpx.HTTPError as error:
            outcome = self.stats.record_error(error)
        else:
            self.stats.record_response(response)
            outcome = classify(action, response)
        self.client.cookies.delete("messages")  # as if the page had shown them
        self.ledger.record(self.student.id, event.id, outcome)
        return outcome


def raw_post(port: int, path: str, token: str, csrf: str) -> bytes:
    body = urlencode({"csrfmiddlewaretoken": csrf, "confirm_overlap": "yes"}).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Cookie: {SESSION_COOKIE}={token}; {CSRF_COOKIE}={csrf}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def raw_get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()


async def abort_requests(port: int, requests: list[bytes], *, hold: float = 0.0, until=None,
                         answered: Counter | None = None) -> int:
    """Send each request on its own connection, wait (``hold`` seconds, or until the awaitable ``until()``
    is true), then close every socket at once without reading. Returns how many were aborted before the
    server answered (an answer already in the socket is counted in ``answered``)."""
    connections = []
    for request in requests:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            continue
        writer.write(request)
        connections.append((reader, writer))
    await asyncio.gather(*(writer.drain() for _reader, writer in connections), return_exceptions=True)
    if until is not None:
        await until()
    if hold:
        await asyncio.sleep(hold)
    aborted = 0
    for reader, writer in connections:
        if reader._buffer:  # noqa: SLF001 - already answered: not a mid-flight abort
            if answered is not None:
                answered[bytes(reader._buffer[:12]).decode(errors="replace")] += 1  # noqa: SLF001
        else:
            aborted += 1
        writer.transport.abort()
    return aborted


async def truncate(url: str) -> None:
    """Empty every table (the schema stays), between the harness's scenarios."""
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    engine = engine_for(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE TABLE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


class Crowd:
    """Students browsing and registering at once: each browses the home page, event pages and the
    calendar, registers and leaves, with a short pause between clicks, until ``stop`` is set."""

    def __init__(self, base_url: str, cast: Cast, *, size: int, seed: int = 1, stats: Stats | None = None,
                 ledger: Ledger | None = None, write_share: float = 0.3, pause: tuple[float, float] = (0.02, 0.1),
                 timeout: float = 10) -> None:
        self.base_url, self.cast, self.size = base_url, cast, size
        self.random = random.Random(seed)  # noqa: S311 - load, not secrets
        self.stats = stats or Stats()
        self.ledger = ledger if ledger is not None else Ledger()
        self.write_share, self.pause, self.timeout = write_share, pause, timeout
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        students = self.random.sample(self.cast.students, self.size)
        self.tasks = [asyncio.create_task(self._student(student)) for student in students]

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _student(self, seeded: SeededStudent) -> None:
        browser = Student(self.base_url, seeded, timeout=self.timeout, stats=self.stats, ledger=self.ledger)
        try:
            while not self.stop.is_set():
                event = self.random.choice(self.cast.events)
                roll = self.random.random()
                failures = sum(self.stats.errors.values())
                if roll < self.write_share:
                    await browser.act(event, "register" if roll < self.write_share * 0.7 else "leave")
                elif roll < self.write_share + 0.2:
                    await browser.get("/")
                elif roll < self.write_share + 0.3:
                    await browser.get("/calendar/")
                else:
                    await browser.get(f"/events/{event.slug}/")
                if sum(self.stats.errors.values()) > failures:  # a person waits a moment before trying again
                    await asyncio.sleep(self.random.uniform(0.2, 0.5))
                await asyncio.sleep(self.random.uniform(*self.pause))
        finally:
            await browser.aclose()


class Prober:
    """One page, every ``every`` seconds, recording (started, ended, status or error kind): when the site
    failed and when it served again."""

    def __init__(self, base_url: str, path: str, *, every: float = 0.05, timeout: float = 5) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers={"Accept-Language": "en"})
        self.path, self.every = path, every
        self.samples: list[tuple[float, float, int | str]] = []
        self.stats = Stats()
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def finish(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
        await self.client.aclose()

    async def _run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            self.stats.sent += 1
            try:
                response = await self.client.get(self.path)
            except httpx.HTTPError as error:
                outcome: int | str = self.stats.record_error(error)
            else:
                self.stats.record_response(response)
                outcome = response.status_code
            self.samples.append((started, time.monotonic(), outcome))
            await asyncio.sleep(self.every)

    def first_ok_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the end of the first 200 that ended after it (None: never)."""
        ends = [ended for _started, ended, outcome in self.samples if ended >= moment and outcome == 200]
        return min(ends) - moment if ends else None

    def failing_window(self, since: float) -> tuple[float, float] | None:
        """(first failure, last failure) after ``since``, as seconds from ``since``."""
        failures = [(started, ended) for started, ended, outcome in self.samples
                    if started >= since and outcome != 200]
        if not failures:
            return None
        return failures[0][0] - since, failures[-1][1] - since
