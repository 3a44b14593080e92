"""Hash flood (issue 17): log-in and page latency while sign-ups keep 50 password hashes queued.

``python -m faults.hashflood`` starts a throw-away PostgreSQL (faults/pg.py), migrates a database, then for
each server configuration starts the site under uvicorn (production settings, real PBKDF2 hashes, one
worker) and, for ``--seconds``, keeps 50 sign-ups in flight (each answered one is replaced by a new one at
once) while three probes, each 0.2 s after its previous answer, measure: ``/healthz?db=1``, the home
page of a logged-in student, and a real log-in (the right password). The configurations:

- ``before``: the code of ``--before`` (a commit, default d33117b: today's accounts and schema, without the
  gate), exported with ``git archive``: hashes in an unbounded pool queue, each holding its admission turn;
- ``gate``: this tree with its defaults (2 hashing threads, 16 waiting of which 8 kept for log-ins, which
  go first, then 429 with Retry-After);
- ``gate, one line``: this tree with ``PASSWORD_HASH_QUEUE_LOGIN=0``: log-ins share the sign-ups' line;
- ``gate, line 64``: this tree with ``PASSWORD_HASH_QUEUE=64``, so that all 50 hashes queue.

It prints and writes faults/results/hash-flood.md (``--no-write``: neither), and replaces its own section
of faults/results/latest.md. It asserts nothing; the tests (tests/plumbing/test_password_gate.py) do.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "faults.settings"

import asyncpg  # noqa: E402
import django  # noqa: E402
import httpx  # noqa: E402

django.setup()

from faults.pg import ThrowawayPostgres, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "faults" / "results"
PASSWORD = "hash-flood-correct-horse"  # noqa: S105 - the scenario's own throw-away account
CSRF = "h" * 32
PROBE_TIMEOUT = 30  # seconds: a probe still unanswered then counts as an error
SESSION_COOKIE = "hyperion_session"  # hyperion/settings.py
SECTION_START, SECTION_END = "<!-- hash-flood -->", "<!-- /hash-flood -->"


@dataclass
class Figures:
    name: str
    flood: dict[int | str, int] = field(default_factory=dict)
    signup_seconds: list[float] = field(default_factory=list)
    probes: dict[str, list[float]] = field(default_factory=lambda: {"healthz?db=1": [], "home (logged in)": [],
                                                                     "log-in": []})
    probe_errors: dict[str, int] = field(default_factory=dict)
    threads: int = 0


def _server(source: Path, url: str, port: int, log: Path, env: dict[str, str]) -> subprocess.Popen:
    child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "faults.settings", "PYTHONUNBUFFERED": "1",
                 "DATABASE_URL": url, "PAGE_CACHE_SECONDS": "0", "PYTHONPATH": str(source), **env}
    child_env.pop("PASSWORD_HASHERS", None)  # the default: PBKDF2, as production
    # The site's own protocol (header timeouts, a limit that counts requests) as runserver serves it; the
    # "before" commit predates it and runs on uvicorn's httptools protocol, which it was served with.
    protocol = "hyperion.httpprotocol:HyperionHttpProtocol" if (source / "hyperion/httpprotocol.py").exists() \
        else "httptools"
    with log.open("w") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "uvicorn", "hyperion.asgi:application", "--host", "127.0.0.1", "--port",
             str(port), "--loop", "uvloop", "--http", protocol, "--ws", "none", "--lifespan", "on",
             "--no-access-log", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"],
            cwd=source, env=child_env, stdout=out, stderr=subprocess.STDOUT)


class _WithoutSetCookie(httpx.AsyncBaseTransport):
    """The flood's client never keeps a session: logged in, a sign-up would only redirect, without a hash."""

    def __init__(self, limits: httpx.Limits) -> None:
        self.inner = httpx.AsyncHTTPTransport(limits=limits)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "set-cookie" in response.headers:
            del response.headers["set-cookie"]
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


async def _wait_up(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{log.read_text()}")  # noqa: ASYNC240 - a failed start, once
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()}")  # noqa: ASYNC240 - a failed start, once
            await asyncio.sleep(0.1)


async def _seed(url: str) -> None:
    """One real account (PBKDF2, hashed here with Django's default hasher) for the log-in probe."""
    from django.contrib.auth.hashers import make_password

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute("TRUNCATE users RESTART IDENTITY CASCADE")
        await connection.execute(
            "INSERT INTO users (email, display_name, password_hash, is_staff, is_active, language, created_at) "
            "VALUES ('probe@etu.test', 'Probe', $1, false, true, 'fr', now())",
            await asyncio.to_thread(make_password, PASSWORD))
    finally:
        await connection.close()


async def _measure(name: str, base: str, pid: int, seconds: float, crowd: int) -> Figures:
    figures = Figures(name)
    cookies = {"csrftoken": CSRF}
    numbers = itertools.count()
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=crowd + 10, max_keepalive_connections=crowd + 10)
    async with httpx.AsyncClient(base_url=base, timeout=60, transport=_WithoutSetCookie(limits)) as flood, \
            httpx.AsyncClient(base_url=base, timeout=PROBE_TIMEOUT) as probe:
        login = await probe.post("/account/login/", data={"email": "probe@etu.test", "password": PASSWORD,
                                                          "csrfmiddlewaretoken": CSRF}, cookies=cookies)
        session = login.cookies.get(SESSION_COOKIE)
        if login.status_code != 302 or not session:
            raise RuntimeError(f"the probe account could not log in: {login.status_code}")
        session_cookie = {SESSION_COOKIE: session}

        async def one_signup() -> int | str:
            number = next(numbers)
            began = time.monotonic()
            # Each sign-up from its own student's address (the server trusts the header from 127.0.0.1), as
            # in a real rush: from one address the sign-up throttle, not the hashing line, would refuse them.
            address = f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
            try:
                response = await flood.post("/account/signup/", cookies=cookies, headers={
                    "x-forwarded-for": address}, data={
                    "email": f"flood{number}@etu.test", "display_name": f"Flood {number}", "promo": "2027",
                    "password1": f"flood-password-{number}", "password2": f"flood-password-{number}",
                    "csrfmiddlewaretoken": CSRF})
                status: int | str = response.status_code  # 200: the account made, its link to confirm sent
            except httpx.HTTPError as error:
                status = type(error).__name__
            figures.flood[status] = figures.flood.get(status, 0) + 1
            if status in (200, 429):
                figures.signup_seconds.append(time.monotonic() - began)
            return status

        async def flooder() -> None:
            while time.monotonic() < stop:
                if await one_signup() == 429:
                    await asyncio.sleep(0.05)  # simulates a client retrying soon after a 429, not at once

        async def probes(kind: str) -> None:
            await asyncio.sleep(1)  # simulates arriving once the flood is under way
            while time.monotonic() < stop:
                began = time.monotonic()
                try:
                    if kind == "healthz?db=1":
                        response = await probe.get("/healthz?db=1")
                        ok = response.status_code == 200
                    elif kind == "home (logged in)":
                        response = await probe.get("/", cookies=session_cookie)
                        ok = response.status_code == 200 and "Probe" in response.text
                    else:
                        response = await probe.post("/account/login/", cookies=cookies, data={
                            "email": "probe@etu.test", "password": PASSWORD, "csrfmiddlewaretoken": CSRF})
                        ok = response.status_code == 302
                    outcome: int | str = response.status_code
                except httpx.HTTPError as error:
                    ok, outcome = False, type(error).__name__
                if ok:
                    figures.probes[kind].append(time.monotonic() - began)
                else:
                    key = f"{kind}: {outcome}"
                    figures.probe_errors[key] = figures.probe_errors.get(key, 0) + 1
                figures.threads = max(figures.threads, _threads(pid))
                await asyncio.sleep(0.2)  # simulates a visitor's pace between two probes

        await asyncio.gather(*(probes(kind) for kind in figures.probes), *(flooder() for _ in range(crowd)))
    return figures


def _ms(values: list[float], quantile: float | None = None) -> str:
    if not values:
        return "-"
    if quantile is None:
        return f"{max(values) * 1000:.0f}"
    if len(values) == 1:
        return f"{values[0] * 1000:.0f}"
    return f"{statistics.quantiles(values, n=100, method='inclusive')[int(quantile * 100) - 1] * 1000:.0f}"


def markdown(results: list[Figures], started: datetime, args: argparse.Namespace, before: str) -> str:
    lines = [
        f"Hash flood, {started:%Y-%m-%d %H:%M} UTC (`python -m faults.hashflood`): {args.crowd} sign-ups kept in "
        f"flight for {args.seconds:.0f} s against one uvicorn worker (production settings, PBKDF2, pool 10, "
        f"admission 10), a throw-away PostgreSQL. Three probes, each 0.2 s after its previous answer: "
        f"`/healthz?db=1`, the home page logged in, a real log-in. `before` is commit {before}. "
        f"Machine: {os.cpu_count()} CPU(s), "
        f"load average at the end {' '.join(f'{value:.2f}' for value in os.getloadavg())} (shared machine).",
        "",
        "| server | sign-ups answered (200 / 429 / other) | sign-up p50 / max ms | healthz?db=1 p50 / max ms "
        "| home logged in p50 / max ms | log-in p50 / max ms | probe errors | peak threads |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for figures in results:
        other = sum(count for status, count in figures.flood.items() if status not in (200, 429))
        cells = [f"{_ms(values, 0.5)} / {_ms(values)}" for values in figures.probes.values()]
        errors = ", ".join(f"{key} ×{count}" for key, count in figures.probe_errors.items()) or "0"
        lines.append(f"| {figures.name} | {figures.flood.get(200, 0)} / {figures.flood.get(429, 0)} / {other} | "
                     f"{_ms(figures.signup_seconds, 0.5)} / {_ms(figures.signup_seconds)} | {' | '.join(cells)} | "
                     f"{errors} | {figures.threads} |")
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace, source_before: Path, before: str) -> list[Figures]:
    results = []
    with ThrowawayPostgres() as pg:
        await pg.execute("CREATE DATABASE hyperion_hashflood")
        url = pg.url("hyperion_hashflood")
        from hyperion import schema

        await asyncio.to_thread(schema.upgrade, "head", url)
        configurations = [("before", source_before, {}), ("gate", ROOT, {}),
                          ("gate, one line", ROOT, {"PASSWORD_HASH_QUEUE_LOGIN": "0"}),
                          ("gate, line 64", ROOT, {"PASSWORD_HASH_QUEUE": "64"})]
        logs = Path(tempfile.mkdtemp(prefix="hyperion-hashflood-logs."))
        try:
            for name, source, env in configurations:
                await _seed(url)
                port = free_port()
                log = logs / f"{name.replace(' ', '_').replace(',', '')}.log"
                process = _server(source, url, port, log, env)
                try:
                    await _wait_up(f"http://127.0.0.1:{port}", process, log)
                    figures = await _measure(name, f"http://127.0.0.1:{port}", process.pid, args.seconds,
                                             args.crowd)
                finally:
                    process.terminate()
                    process.wait(30)
                if "Traceback" in log.read_text():
                    figures.probe_errors["tracebacks in the log"] = log.read_text().count("Traceback")
                print(markdown([figures], datetime.now(UTC), args, before).splitlines()[-1], flush=True)
                results.append(figures)
        finally:
            shutil.rmtree(logs, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m faults.hashflood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15, help="how long each server is flooded")
    parser.add_argument("--crowd", type=int, default=50, help="sign-ups kept in flight")
    parser.add_argument("--before", default="d33117b", help="the commit measured as 'before'")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    before = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT, capture_output=True,  # noqa: S603,S607 - git and tar on our own checkout
                            text=True, check=True).stdout.strip()
    folder = Path(tempfile.mkdtemp(prefix="hyperion-hashflood-before."))
    try:
        archive = subprocess.run(["git", "archive", before], cwd=ROOT, capture_output=True, check=True)  # noqa: S603,S607 - git and tar on our own checkout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)  # noqa: S603,S607 - git and tar on our own checkout
        shutil.copytree(ROOT / "locale", folder / "locale", dirs_exist_ok=True)  # the compiled catalogs
        results = asyncio.run(run(args, folder, before))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text = markdown(results, started, args, before)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "hash-flood.md").write_text("# Hash flood: latest run\n\n" + text)
        latest = RESULTS / "latest.md"
        current = latest.read_text() if latest.exists() else ""
        section = f"{SECTION_START}\n## hash-flood (faults/hashflood.py)\n\n{text}{SECTION_END}\n"
        if SECTION_START in current:
            current = re.sub(f"{re.escape(SECTION_START)}.*?{re.escape(SECTION_END)}\n", lambda _: section,
                             current, flags=re.S)
        else:
            current = current.rstrip("\n") + "\n\n" + section
        latest.write_text(current)
        print(f"written: {RESULTS / 'hash-flood.md'} and the hash-flood section of {latest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
