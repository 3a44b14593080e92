"""Hostile-input fuzzing against the real server: the strategies, a browser-like client and the database snapshot.

The fuzz tests drive a uvicorn child process (tests.support.uvicorn_server) with httpx, so every byte goes
through httptools, the ASGI wrapper, the middleware and the views as in production. Hypothesis runs
``async def`` tests on the suite's session loop (pytest-asyncio 1.5 supports it), so the snapshot reads
the database through the test process's own engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path

import httpx
from django.conf import settings as django_settings
from django.utils.crypto import get_random_string
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from events.models import Association, AuditEntry, Event, Membership, OutboxMessage, Registration, User
from hyperion import db
from tests import support

# Examples per test: small enough for the whole fuzz run to stay under a minute per backend; raise it
# (HYPERION_FUZZ_EXAMPLES=500) for a longer hunt.
EXAMPLES = int(os.environ.get("HYPERION_FUZZ_EXAMPLES", "40"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis folder in the repository; a failure prints its reproduction
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

# For tests that send each example to many URLs: fewer examples, about as many requests.
FUZZ_MANY_URLS = settings(FUZZ, max_examples=max(EXAMPLES // 2, 10))

# Strings that have broken some web application somewhere: SQL and LIKE metacharacters, template syntax
# (Jinja2, Django, JavaScript), markup, control characters, bidi and zero-width characters, characters
# whose case mapping changes their length, huge numbers and huge strings.
HOSTILE = (
    "", " ", "\x00", "a\x00b", "\r\n", "\n\n\n", "\t", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u202e",
    "\u200b", "\ufeff", "\U0010ffff", "\ufffd",
    "'", '"', "'; DROP TABLE events; --", "\" OR 1=1 --", "' OR ''='", "%", "_", "\\", "%_\\", "*", "!:&|()",
    "{{7*7}}", "{% debug %}", "{{ request }}", "${7*7}", "#{7*7}", "<%= 7*7 %>",
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "javascript:alert(1)", "<!--", "]]>",
    "İ", "ß", "ﬁ", "ǅ", "ΐ", "a\u0301", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "🎉" * 50, "ヽ(ಠ_ಠ)ノ", "\u0647\u0645\u0633\u0629",
    "0", "-1", "1.5", "1e309", "NaN", "Infinity", "-0", "0x10", "1_000", "٣", "²", "null", "None", "true",
    "[]", "{}", "9" * 30, "9" * 5000, "x" * 5000,
)

# Text Hypothesis generates: anything UTF-8 can carry (lone surrogates cannot be sent at all).
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
hostile = st.sampled_from(HOSTILE)
junk = st.one_of(hostile, any_text)

huge_numbers = st.integers(min_value=2**31 - 2, max_value=10**40).map(str)
numbers = st.one_of(st.integers(min_value=-(10**6), max_value=10**6).map(str), huge_numbers, junk)

# Europe/Paris: 2027-03-28 02:00-03:00 does not exist, 2026-10-25 02:00-03:00 happens twice.
DST_TRAPS = (
    "2027-03-28T02:30", "2027-03-28T02:00", "2027-03-28T02:59", "2026-03-29T02:30", "2026-10-25T02:30",
    "2026-10-25T02:00", "2026-10-25T02:59", "2027-10-31T02:15",
)
BAD_DATETIMES = (
    "2026-02-30T10:00", "2026-13-01T10:00", "2026-06-01T24:00", "2026-06-01T10:60", "0000-01-01T00:00",
    "0001-01-01T00:00", "9999-12-31T23:59", "1999-12-31T23:59", "2101-01-01T00:00", "2026-06-01",
    "2026-06-01T10:00:00Z", "2026-06-01T10:00+02:00", "2026-06-01 10:00", "2026-06-01T10:00:00.123456",
    "01/06/2026 10:00", "２０２６-06-01T10:00", "٢٠٢٦-٠٦-٠١T١٠:٠٠", "now", "tomorrow",
)
local_datetimes = st.one_of(
    st.sampled_from(DST_TRAPS + BAD_DATETIMES),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2110, 12, 31)).map(  # noqa: DTZ001
        lambda moment: moment.strftime("%Y-%m-%dT%H:%M")),
    junk,
)
dates = st.one_of(
    st.sampled_from(("2026-02-29", "2028-02-29", "2026-00-10", "0001-01-01", "9999-12-31", "31/12/2026",
                     "2026-1-1", "2026-W10", "20260101", "2026-06-01T00:00")),
    st.dates(min_value=datetime(1990, 1, 1).date(), max_value=datetime(2110, 1, 1).date()).map(  # noqa: DTZ001
        lambda day: day.isoformat()),
    junk,
)

# An address that passes Django's EmailValidator but grows when lower-cased ("İ" → "i̇"): the stored
# address must still fit the column (254 characters).
GROWING_EMAIL = "a@" + ".".join(["İ" * 60] * 4)[:240] + ".fr"
emails = st.one_of(
    st.emails().map(str),
    st.sampled_from((GROWING_EMAIL, "a@b", "a@b.c", "@x.fr", "a@@x.fr", "a\x00@x.fr", "a@x.fr\n", " a@x.fr ",
                     "A@X.FR", "a+b@x.fr", '"a b"@x.fr', "a@[127.0.0.1]", "a@xn--bcher-kva.ch", "a@bücher.ch",
                     "x" * 250 + "@x.fr", "a@" + "x" * 300 + ".fr")),
    junk,
)
checkbox = st.one_of(st.sampled_from(("on", "off", "true", "false", "0", "1", "", "yes", "no", "None")), junk)


# The database as a user would notice it: row counts and a digest of every row of the tables that
# invalid input must never touch.
SNAPSHOT_TABLES = (Association, User, Membership, Event, Registration, AuditEntry, OutboxMessage)


async def db_snapshot() -> dict[str, tuple[int, str]]:
    snapshot = {}
    async with db.read_session() as session:
        for model in SNAPSHOT_TABLES:
            rows = (await session.execute(select(*model.__table__.c).order_by(model.id))).all()
            digest = hashlib.sha256(repr([tuple(row) for row in rows]).encode()).hexdigest()
            snapshot[model.__tablename__] = (len(rows), digest)
    return snapshot


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after[name]]


@asynccontextmanager
async def database_unchanged(what: object = ""):
    """The block may send anything: afterwards every snapshot table is as it was."""
    before = await db_snapshot()
    yield
    after = await db_snapshot()
    assert after == before, (changed_tables(before, after), what)


# The real server.

FUZZ_APPLICATION_NAME = "hyperion-fuzz"  # the fuzzed server's connections, as pg_stat_activity names them


@contextmanager
def fuzz_server(tmp_path: Path, database_url: str):
    """uvicorn with the test settings; cookies without Secure because httpx speaks plain HTTP to it."""
    env = {"DATABASE_URL": database_url, "CSRF_COOKIE_SECURE": "false", "SESSION_COOKIE_SECURE": "false",
           "DB_APPLICATION_NAME": FUZZ_APPLICATION_NAME}
    with support.uvicorn_server(tmp_path, env=env) as server:
        yield server


# This run's database only: another test run on the same server (CI beside a developer's run) has a fuzzed
# server with the same name, whose connections are none of ours to judge or end.
_BUSY = text("SELECT pid, state, left(query, 120) AS query FROM pg_stat_activity "
             "WHERE application_name = :name AND datname = current_database() AND state <> 'idle' "
             "AND pid <> pg_backend_pid()")


async def busy_server_connections(*, within: float = 30) -> list[tuple]:
    """The fuzzed server's PostgreSQL connections left running a statement or inside a transaction once its
    answer is sent: each holds its locks (a migration's ACCESS EXCLUSIVE lock, or the tests' TRUNCATE,
    then waits behind it). Nothing on SQLite, whose connections live in the server's process.

    A connection goes back to the pool just after the answer: this waits for the server's connections to
    settle, and returns those still busy ``within`` seconds later (a finding)."""
    if db.is_sqlite(db.get_engine()):
        return []
    busy: list[tuple] = []

    async def settled() -> bool:
        nonlocal busy
        async with db.read_session() as session:
            busy = [tuple(row) for row in await session.execute(_BUSY, {"name": FUZZ_APPLICATION_NAME})]
        return not busy

    with contextlib.suppress(AssertionError):
        await support.until(settled, within=within, what="the fuzzed server's connections back in the pool")
    return busy


async def end_busy_server_connections() -> None:
    """Close what busy_server_connections() found (the server replaces the connections), so that one
    finding does not block every later test's clean-up."""
    if not db.is_sqlite(db.get_engine()):
        async with db.read_session() as session:
            await session.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                       "application_name = :name AND datname = current_database() "
                                       "AND state <> 'idle' AND pid <> pg_backend_pid()"),
                                  {"name": FUZZ_APPLICATION_NAME})


def error_shown(html: str) -> bool:
    """A field error (the forms macro's errorlist) or a form-wide error is on the page."""
    return 'class="errorlist"' in html or 'class="form-errors"' in html


class Visitor:
    """A browser on the real server: keeps cookies, holds a CSRF secret, and turns any 5xx into a failure
    that quotes the request and the server's traceback."""

    def __init__(self, server: support.RunningServer, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client
        self.csrf = get_random_string(32)  # what Django's CSRF cookie holds; the form sends it back
        self.arm_csrf()

    def arm_csrf(self) -> None:
        self.client.cookies.set(django_settings.CSRF_COOKIE_NAME, self.csrf)

    def log_in(self, token: str) -> None:
        self.client.cookies.set(django_settings.SESSION_COOKIE_NAME, token)

    def log_out(self) -> None:
        self.client.cookies.delete(django_settings.SESSION_COOKIE_NAME)

    async def get(self, url: str, **kwargs) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, data: dict | None = None, *, csrf: bool = True, **kwargs) -> httpx.Response:
        form = {**(data or {})}
        if csrf:
            form.setdefault("csrfmiddlewaretoken", self.csrf)
        return await self.request("POST", url, data=form, **kwargs)

    async def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        offset = self.server.log_path.stat().st_size
        if url.startswith("//"):  # httpx reads a relative "//x" as a host; the server must still answer such paths
            url = self.server.base_url.rstrip("/") + url
        response = await self.client.request(method, url, **kwargs)
        assert response.status_code < 500, self.failure(response, offset, kwargs)
        rotated = response.cookies.get(django_settings.CSRF_COOKIE_NAME)
        if rotated:  # the site rotates the CSRF secret at log-in, as Django does: keep the new one
            self.client.cookies.delete(django_settings.CSRF_COOKIE_NAME)
            self.csrf = rotated
            self.arm_csrf()
        return response

    def failure(self, response: httpx.Response, offset: int, kwargs: dict) -> str:
        with self.server.log_path.open("rb") as log:
            log.seek(offset)
            fresh = log.read().decode(errors="replace")
        start = fresh.rfind("Traceback (most recent call last):")
        excerpt = fresh[start:][-3000:] if start >= 0 else fresh[-3000:]
        sent = {key: value for key, value in kwargs.items() if key in ("data", "params", "content", "headers")}
        return (f"{response.request.method} {response.request.url} answered {response.status_code}\n"
                f"sent: {sent!r}"[:2000] + f"\nserver log:\n{excerpt}")


def visitor_client(server: support.RunningServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, timeout=30, follow_redirects=False,
                             headers={"Accept-Language": "en"})
