"""The benchmark: our async server against the guide's thread-per-request "before", side by side.

    ./bench/run            # the full run (~30 minutes)
    ./bench/run --quick    # a few seconds per cell: checks that everything works

Sets up its own database (``hyperion_bench``), generates the data set, starts each server in turn, loads
it with wrk (closed loop) and with asyncio clients (open loop, registration rush), and writes
bench/results/latest.{md,json,png}. It prints figures and never asserts timings; every run is bounded in
time; servers and the latency proxy are stopped on exit, Ctrl-C or error. Targets 127.0.0.1 only.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import mix, procstats, report

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
TOKENS = RESULTS / "tokens.json"
WRK_DATA = RESULTS / "wrk-data.lua"
PYTHON = sys.executable
DATABASE = "hyperion_bench"


@dataclass
class Plan:
    """How long each cell lasts."""

    warm: float
    single: float
    mix: float
    concurrency: tuple[int, ...]
    latency_warm: float
    latency_closed: float
    open_loop: float
    rush_students: int
    rush_streams: int
    # Logged-in cells warm up longer: 2,000 students' sessions and 1,429 events' shared parts get into the
    # server's memory first, as on a busy evening; a cold start is what the "no page cache" server shows.
    warm_loggedin: float = 6
    idle_limit: float = 60  # seconds at most to wait for a server to finish the previous load's backlog
    wrk_threads: int = 2

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(warm=1, single=3, mix=3, concurrency=(50, 500, 1000), latency_warm=3, latency_closed=4,
                       open_loop=3, rush_students=300, rush_streams=300, idle_limit=20, warm_loggedin=1)
        return cls(warm=2, single=10, mix=20, concurrency=(50, 500, 1000), latency_warm=5, latency_closed=20,
                   open_loop=10, rush_students=2000, rush_streams=2000)


# Processes this run started (servers, latency proxy): stopped at exit whatever happens, by their id.
_children: list[subprocess.Popen] = []


def _stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the group is the server and its workers
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _stop_all() -> None:
    while _children:
        _stop_process(_children.pop())


def _spawn(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules, fixed arguments
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _children.append(process)
    return process


def wait_port(port: int, seconds: float = 10) -> None:
    """Until something accepts connections on 127.0.0.1:``port`` (a process just started), ``seconds`` at most."""
    for _ in range(int(seconds * 10)):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, headers: dict | None = None, method: str = "GET", body: str | None = None,
             timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# Servers.

@dataclass
class Server:
    key: str
    label: str
    kind: str  # "ours" | "baseline"
    threads: int | None = None  # baseline: gunicorn threads
    page_cache: bool = True
    workers: int = 1  # ours: uvicorn --workers (a parent process and its worker processes)
    process: subprocess.Popen | None = None
    port: int = 0
    pool: dict = field(default_factory=dict)

    def command(self) -> list[str]:
        if self.kind == "ours":
            return [PYTHON, "-m", "uvicorn", "hyperion.asgi:application", "--host", "127.0.0.1", "--port",
                    str(self.port), "--loop", "uvloop", "--http", "hyperion.httpprotocol:HyperionHttpProtocol",
                    "--ws", "none", "--no-access-log", "--limit-concurrency", "4000", "--backlog", "4096",
                    "--lifespan", "on", "--log-level", "warning"] + (
                        ["--workers", str(self.workers)] if self.workers > 1 else [])
        return [PYTHON, "-m", "gunicorn", "bench.baseline.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                "--workers", "1", "--worker-class", "gthread", "--threads", str(self.threads),
                "--worker-connections", "4000", "--backlog", "4096", "--keep-alive", "5", "--timeout", "120",
                "--log-level", "warning"]

    def start(self, *, database_url: str, base_env: dict[str, str], pool_size: int, max_overflow: int,
              log_name: str, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        env = {**base_env, "DB_POOL_SIZE": str(pool_size), "DB_MAX_OVERFLOW": str(max_overflow),
               "DB_POOL_TIMEOUT": "30", **(extra_env or {})}
        if self.kind == "ours":
            env["DATABASE_URL"] = database_url
            env["DJANGO_SETTINGS_MODULE"] = "hyperion.settings"
            env["PAGE_CACHE_SECONDS"] = "30" if self.page_cache else "0"
            # As many kept-alive connections between requests as the limit admits requests: the rush keeps
            # thousands of clients connected.
            env["SERVER_MAX_IDLE_CONNECTIONS"] = "4000"
        else:
            env["DATABASE_URL"] = database_url.replace("+asyncpg", "+psycopg")
            env["DJANGO_SETTINGS_MODULE"] = "bench.baseline.settings"
        self.pool = {"pool_size": pool_size, "max_overflow": max_overflow}
        self.process = _spawn(self.command(), env=env, log=LOGS / f"{log_name}.log")
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited at startup: see {LOGS / f'{log_name}.log'}")
            try:
                # Every worker of several answers in turn: a few answers in a row before the load.
                if all(http_get(self.port, "/calendar/", timeout=30)[0] == 200 for _ in range(2 * self.workers)):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} did not answer within 60 s: see {LOGS / f'{log_name}.log'}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)
            with contextlib.suppress(ValueError):
                _children.remove(self.process)
            self.process = None

    def pids(self) -> list[int]:
        return procstats.process_tree(self.process.pid)

    def cpu(self) -> float:
        return procstats.cpu_seconds(self.pids())

    def wait_idle(self, limit: float = 60.0) -> float:
        """Wait until the server has finished what a previous load left queued (a thread-per-request server
        still serves requests whose clients have gone): below 5% of a core over 0.3 s. Returns seconds."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            before = self.cpu()
            time.sleep(0.3)
            if self.cpu() - before < 0.015:
                break
        return time.monotonic() - started


SERVERS = [
    Server("ours", "ours (uvicorn, async)", "ours"),
    Server("ours_nocache", "ours, no page cache", "ours", page_cache=False),
    Server("base50", "baseline gthread 50", "baseline", threads=50),
    Server("base200", "baseline gthread 200", "baseline", threads=200),
]
# Ours with two uvicorn workers, for the logged-in mix at c=500 against one worker (scenario a).
TWO_WORKERS = Server("ours_2w", "ours, 2 workers", "ours", workers=2)
# The servers of the logged-in single pages (the 200-thread baseline is measured on the mixes only).
LOGGEDIN_SINGLE_SERVERS = ("ours", "ours_nocache", "base50")
# The logged-in single pages: (cell, kind of loggedin.lua). The event page is the existing "detail_student".
LOGGEDIN_SINGLES = [("li_home", "home"), ("li_my_events", "my_events"), ("li_calendar", "calendar"),
                    ("li_feed", "feed"), ("li_register", "register")]


# The database.

class OwnPostgres:
    """A throw-away PostgreSQL cluster from the installed binaries (``--own-postgres``): no other client
    shares its connections, and max_connections can be as large as the guide's example wants."""

    def __init__(self, max_connections: int = 400) -> None:
        self.max_connections = max_connections
        self.directory: Path | None = None
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []  # it refuses root
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
        if not binaries:
            raise SystemExit("--own-postgres: no PostgreSQL binaries under /usr/lib/postgresql")
        self.bin = binaries[-1].parent

    def start(self) -> str:
        import tempfile

        self.directory = Path(tempfile.mkdtemp(prefix="hyperion-bench-pg."))
        if self.as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        port = free_port()
        data = self.directory / "data"
        subprocess.run([*self.as_postgres, str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A",  # noqa: S603 - PostgreSQL's own binaries
                        "trust", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        options = (f"-p {port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   f"-c max_connections={self.max_connections}")
        subprocess.run([*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(data), "-l",  # noqa: S603 - idem
                        str(self.directory / "log"), "-w", "-o", options, "start"],
                       check=True, capture_output=True, timeout=120)
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def stop(self) -> None:
        if self.directory is None:
            return
        subprocess.run([*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"),  # noqa: S603 - idem
                        "-m", "fast", "-w", "stop"], capture_output=True, timeout=120, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None


class Database:
    def __init__(self, admin_url: str) -> None:
        from sqlalchemy import make_url

        admin = make_url(admin_url)
        if admin.host not in ("127.0.0.1", "localhost", None):
            raise SystemExit("the benchmark only uses a PostgreSQL server on 127.0.0.1")
        self.admin = admin.set(drivername="postgresql+psycopg")
        self.url = admin.set(drivername="postgresql+asyncpg", database=DATABASE)
        self.marks: dict[str, int] = {}

    def sync_url(self, **changes) -> str:
        return self.url.set(drivername="postgresql+psycopg", **changes).render_as_string(hide_password=False)

    def async_url(self, **changes) -> str:
        return self.url.set(**changes).render_as_string(hide_password=False)

    def connect(self, admin: bool = False):
        import psycopg

        url = self.admin if admin else self.url
        return psycopg.connect(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username,
                               password=url.password, dbname=url.database or "postgres", autocommit=True)

    def recreate(self) -> None:
        with self.connect(admin=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            connection.execute(f"CREATE DATABASE {DATABASE}")

    def facts(self) -> dict:
        with self.connect(admin=True) as connection:
            return {
                "version": connection.execute("SHOW server_version").fetchone()[0],
                "max_connections": int(connection.execute("SHOW max_connections").fetchone()[0]),
                "in_use": connection.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                             "'client backend'").fetchone()[0],
            }

    def mark(self) -> None:
        """Remember the data set's last ids: each cell starts from the same data (see reset)."""
        with self.connect() as connection:
            for table in ("registrations", "outbox", "audit_log"):
                self.marks[table] = connection.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
            connection.execute("ANALYZE")

    def written(self) -> dict:
        """What the cell wrote since the last reset: registrations (confirmed ones) and outbox rows."""
        with self.connect() as connection:
            registrations, confirmed = connection.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'confirmed') FROM registrations WHERE id > %s",
                (self.marks["registrations"],)).fetchone()
            outbox = connection.execute("SELECT count(*) FROM outbox WHERE id > %s",
                                        (self.marks["outbox"],)).fetchone()[0]
        return {"registrations": registrations, "confirmed": confirmed, "outbox": outbox}

    def reset(self) -> None:
        """Drop what the previous cell wrote (registrations, their outbox rows) and tell the servers'
        listeners (our page cache is dropped by the same NOTIFY that any write sends)."""
        with self.connect() as connection:
            for table in ("outbox", "audit_log", "registrations"):
                connection.execute(f"DELETE FROM {table} WHERE id > %s", (self.marks[table],))  # noqa: S608 - fixed names
            connection.execute("SELECT pg_notify('hyperion_seats', '0')")


def build_dataset(database: Database, plan: Plan) -> dict:
    """Migrate and fill ``hyperion_bench`` with bench.dataset (in this process, through the site's own
    async SQLAlchemy layer), then write the tokens for the load scripts."""
    os.environ.update(DATABASE_URL=database.async_url(), DJANGO_SETTINGS_MODULE="hyperion.settings",
                      DEBUG="false", SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50))
    import django

    django.setup()
    from bench.dataset import dataset_create
    from hyperion import db, schema

    started = time.monotonic()
    database.recreate()
    schema.upgrade("head", database_url=database.async_url())

    async def fill():
        async with db.engine_scope():
            return await dataset_create()

    counts, data = asyncio.run(fill())
    database.mark()
    RESULTS.mkdir(parents=True, exist_ok=True)
    TOKENS.write_text(json.dumps({**data, "marks": database.marks}))
    return {**counts, "sessions": len(data["sessions"]), "seconds": round(time.monotonic() - started, 1)}


def _lua(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # ASCII tokens and slugs: JSON string syntax is Lua's
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "{" + ",".join(_lua(item) for item in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}={_lua(item)}" for key, item in value.items()) + "}"
    raise TypeError(type(value))


def open_slugs(database: Database) -> list[str]:
    """Events a student can register for during the whole run, with seats to spare (first come): upcoming by
    more than a day, their registration window open, approved, and at least 50 seats free (or no limit)."""
    with database.connect() as connection:
        return [row[0] for row in connection.execute(
            "SELECT e.slug FROM events e WHERE e.status = 'approved' AND e.slug <> 'rush' "
            "AND e.starts_at > now() + interval '1 day' "
            "AND coalesce(e.registration_closes_at, e.starts_at) > now() + interval '1 day' "
            "AND (e.registration_opens_at IS NULL OR e.registration_opens_at <= now()) "
            "AND (e.capacity IS NULL OR e.capacity - (SELECT count(*) FROM registrations r WHERE r.event_id = e.id "
            "AND r.status = 'confirmed') >= 50) ORDER BY e.id")]


def _write_wrk_data(data: dict) -> None:
    lua = {"sessions": data["sessions"], "feeds": data["feeds"], "csrf": data["csrf"], "slugs": data["slugs"],
           "open_slugs": data["open_slugs"], "mix": [list(entry) for entry in mix.MIX],
           "loggedin_mix": [list(entry) for entry in mix.LOGGEDIN_MIX], "filtered_path": mix.FILTERED_PATH}
    WRK_DATA.write_text("-- generated by bench.run for this run's data set\nreturn " + _lua(lua) + "\n")


# Load generators.

def run_wrk(port: int, script: str, connections: int, duration: float, threads: int, kind: str = "mix") -> dict:
    """wrk with ``bench/lua/<script>``; ``kind`` is what loggedin.lua sends (one kind of request, or "mix")."""
    command = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(duration))}s",
               "--latency", "--timeout", "10s", "-s", str(BENCH / "lua" / script), f"http://127.0.0.1:{port}/"]
    env = {**os.environ, "BENCH_WRK_DATA": str(WRK_DATA), "BENCH_LUA_DIR": str(BENCH / "lua"), "BENCH_KIND": kind}
    done = subprocess.run(command, env=env, capture_output=True, text=True,  # noqa: S603 - wrk, fixed args
                          timeout=duration + 60, check=False)
    line = next((line for line in done.stdout.splitlines() if line.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    raw = json.loads(line[len("WRKJSON "):])
    seconds = raw["duration_us"] / 1e6
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "tool": "wrk", "connections": connections, "requests": raw["requests"], "seconds": seconds,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000, "non_2xx_3xx": raw["status"], "socket_errors": socket_errors,
        "errors": raw["status"] + socket_errors,
        "error_detail": {key: raw[key] for key in ("connect", "read", "write", "timeout", "status")},
    }


def run_openloop(port: int, rate: float, duration: float, mix_name: str = "anon") -> dict:
    out = LOGS / f"openloop-{port}-{int(rate)}-{mix_name}.json"
    command = [PYTHON, "-m", "bench.openloop", "--port", str(port), "--rate", f"{rate:.1f}", "--duration",
               str(duration), "--timeout", "10", "--data", str(TOKENS), "--mix", mix_name, "--out", str(out),
               "--trace", str(out.with_suffix(".trace.json"))]
    subprocess.run(command, cwd=ROOT, timeout=duration + 90, check=True)  # noqa: S603 - our own module
    result = json.loads(out.read_text())
    return {"tool": "openloop", **result, "requests": result["completed"], "rps": result["throughput"]}


def measured(server: Server, load) -> dict:
    """Run ``load()`` and add the server's CPU time per request, peak threads and peak RSS."""
    before = server.cpu()
    started = time.monotonic()
    with procstats.Sampler(server.process.pid) as sampler:
        result = load()
    elapsed = time.monotonic() - started
    cpu = server.cpu() - before
    completed = result["requests"]
    result.update(
        server_cpu_s=round(cpu, 2), server_cpu_share=round(cpu / elapsed, 2) if elapsed else None,
        cpu_ms_per_req=(cpu * 1000 / completed) if completed else None,
        peak_threads=sampler.peak_threads, peak_rss_mb=round(sampler.peak_rss_mb, 1),
        peak_rss_per_process_mb=round(sampler.peak_rss_per_process_mb, 1))
    return result


def smoke(server: Server, data: dict) -> dict:
    """One request of each kind before the load: the status and size of each answer (a 403 would mean CSRF
    trouble; a size unlike ours would mean the baseline no longer renders what the site renders)."""
    import random

    rng = random.Random(3)  # noqa: S311 - picks pages for a smoke test, not secrets
    answers = {}
    requests = [(kind, kind, False) for kind, _weight in mix.MIX]
    requests += [(f"li_{kind}", kind, True) for kind, _weight in mix.LOGGEDIN_MIX]
    for name, kind, loggedin in requests:
        method, path, headers, body = mix.request_for(kind, data, rng, loggedin=loggedin)
        status, _, content = http_get(server.port, path, headers, method, body.decode() or None)
        answers[name] = {"status": status, "bytes": len(content)}
    return answers


def smoke_drift(results: dict) -> list[str]:
    """Pages whose status or size differs between ours and a baseline by more than 5%."""
    a = results.get("a", {})
    ours = a.get("ours", {}).get("smoke", {})
    drift = []
    for key in ("base50", "base200"):
        for kind, answer in a.get(key, {}).get("smoke", {}).items():
            mine = ours.get(kind)
            if mine and (mine["status"] != answer["status"]
                         or abs(mine["bytes"] - answer["bytes"]) > 0.05 * max(mine["bytes"], 1)):
                drift.append(f"{key} {kind}: {answer['status']}, {answer['bytes']} B (ours {mine['status']}, "
                             f"{mine['bytes']} B)")
    return drift


def _say(text: str) -> None:
    print(text, flush=True)


def _cell_line(server: Server, name: str, cell: dict) -> str:
    cpu = cell.get("cpu_ms_per_req")
    return (f"  {server.label:24} {name:14} {cell['rps']:8.0f} req/s  CPU {cpu if cpu is None else round(cpu, 2)} "
            f"ms/req  p50 {cell['p50_ms']:.1f} ms  p99 {cell['p99_ms']:.1f} ms  errors {cell['errors']}  "
            f"threads {cell['peak_threads']}  RSS {cell['peak_rss_mb']:.0f} MB")


# Scenarios.

# Ours runs with the site's default pool (hyperion/settings.py: 10, no overflow) where the database is on
# loopback: there the CPU, not the pool, bounds one process (a pool of 5 served the mix as fast as 30 did).
# Scenario (b) sizes the pool for 100 ms round trips.
OURS_POOL = (10, 0)


def scenario_a(plan: Plan, database: Database, base_env: dict, data: dict, results: dict, budget: int,
               parts: set[str]) -> None:
    """(a) Straight to PostgreSQL: single pages at c=50 (CPU per page), then the mixes at each concurrency;
    ``parts``: "anon" (visitors' pages and mix), "loggedin" (issue 18: logged-in students' pages and mix)."""
    _say("== (a) the mix at " + ", ".join(map(str, plan.concurrency)) + " connections, single pages at c=50"
         + f" ({', '.join(sorted(parts))})")
    out = results.setdefault("a", {})
    for server in SERVERS:
        pool, overflow = OURS_POOL if server.kind == "ours" else (min(server.threads, budget), 0)
        server.start(database_url=database.async_url(), base_env=base_env, pool_size=pool, max_overflow=overflow,
                     log_name=f"a-{server.key}")
        try:
            cells = out.setdefault(server.key, {})
            database.reset()  # the previous server's last cell wrote registrations the smoke would show
            cells.update(pool=server.pool, smoke=smoke(server, data))
            database.reset()
            runs: list[tuple[str, str, int, float, str]] = []
            if "anon" in parts:
                runs += [("floor", "floor.lua", 50, plan.single, "mix"), ("home", "home.lua", 50, plan.single, "mix"),
                         ("detail", "detail.lua", 50, plan.single, "mix")]
            runs += [("detail_student", "detail_student.lua", 50, plan.single, "mix")]
            if "loggedin" in parts and server.key in LOGGEDIN_SINGLE_SERVERS:
                runs += [(name, "loggedin.lua", 50, plan.single, kind) for name, kind in LOGGEDIN_SINGLES]
            if "anon" in parts:
                runs += [(f"mix_c{count}", "mix.lua", count, plan.mix, "mix") for count in plan.concurrency]
            if "loggedin" in parts:
                runs += [(f"li_mix_c{count}", "loggedin.lua", count, plan.mix, "mix") for count in plan.concurrency]
            for name, script, count, duration, kind in runs:
                cells[name] = measured_wrk(server, database, plan, script, count, duration, kind)
                if kind == "register":  # that the POSTs were real registrations, not refusals
                    cells[name]["written"] = database.written()
                _say(_cell_line(server, name, cells[name])
                     + (f"  written: {cells[name]['written']}" if "written" in cells[name] else ""))
        finally:
            server.stop()
    if "loggedin" in parts:
        two_workers(plan, database, base_env, results)
    results["smoke_drift"] = smoke_drift(results)
    for line in results["smoke_drift"]:
        _say(f"  WARNING: the baseline does not render what ours renders: {line}")


def measured_wrk(server: Server, database: Database, plan: Plan, script: str, connections: int, duration: float,
                 kind: str = "mix") -> dict:
    """A warm-up (not measured), then one measured wrk cell, each cell from the same data."""
    warm = plan.warm_loggedin if script in ("loggedin.lua", "detail_student.lua") else plan.warm
    run_wrk(server.port, script, connections, warm, plan.wrk_threads, kind)
    server.wait_idle(plan.idle_limit)
    database.reset()
    return measured(server, lambda: run_wrk(server.port, script, connections, duration, plan.wrk_threads, kind))


def two_workers(plan: Plan, database: Database, base_env: dict, results: dict) -> None:
    """Ours with ``uvicorn --workers 2`` (one pool and one page store each), the logged-in mix at c=500: how
    close two processes come to twice one (req/s, CPU/request) on this machine's two cores, which wrk and
    PostgreSQL share."""
    count = 500 if 500 in plan.concurrency else plan.concurrency[-1]
    server = TWO_WORKERS
    server.start(database_url=database.async_url(), base_env=base_env, pool_size=OURS_POOL[0],
                 max_overflow=OURS_POOL[1], log_name=f"a-{server.key}")
    try:
        cells = results["a"].setdefault(server.key, {})
        cells.update(pool=server.pool, workers=server.workers,
                     processes=len(server.pids()))  # the parent and its workers, summed by procstats
        name = f"li_mix_c{count}"
        cells[name] = measured_wrk(server, database, plan, "loggedin.lua", count, plan.mix)
        _say(_cell_line(server, name, cells[name]) + f"  ({cells['processes']} processes summed)")
        one = results["a"].get("ours", {}).get(name)
        if one and one["rps"]:
            _say(f"  2 workers: {cells[name]['rps'] / one['rps']:.2f}x of 2x the req/s of one worker, CPU/request "
                 f"{cells[name]['cpu_ms_per_req'] or 0:.2f} ms against {one['cpu_ms_per_req'] or 0:.2f} ms")
    finally:
        server.stop()


def scenario_b(plan: Plan, database: Database, base_env: dict, results: dict, budget: int, parts: set[str]) -> None:
    """(b) Every database round trip takes +100 ms (latency proxy): the mix at c=1000 (wrk), then open-loop;
    for each of ``parts`` ("anon": the visitors' mix, "loggedin": the logged-in students' mix)."""
    _say("== (b) +100 ms per database round trip (latency proxy), c=1000 closed loop, then open loop"
         + f" ({', '.join(sorted(parts))})")
    out = results.setdefault("b", {})
    proxy_port = free_port()
    proxy = _spawn([PYTHON, "-m", "bench.latency_proxy", "--port", str(proxy_port), "--upstream",
                    f"{database.url.host or '127.0.0.1'}:{database.url.port or 5432}", "--delay", "0.1"],
                   env={**os.environ}, log=LOGS / "latency-proxy.log")
    try:
        wait_port(proxy_port)
        url = database.async_url(host="127.0.0.1", port=proxy_port)
        # Pools within max_connections: ours one pool (no overflow: overflow connections are reopened over and
        # over, each set-up a few round trips here; + its LISTEN connection); the baseline wants one connection
        # per thread, which 200 threads cannot all have.
        ours_pool = max(10, min(110, budget - 1))
        sizes = {"ours": (ours_pool, 0), "ours_nocache": (ours_pool, 0), "base50": (min(50, budget), 0),
                 "base200": (min(200, budget), 0)}
        out["proxy"] = {"delay_ms": 100, "direction": "PostgreSQL to server, every chunk"}

        def start(server: Server, name: str, script: str) -> None:
            pool, overflow = sizes[server.key]
            # A distant database: a request spends more of its turn in Django without a connection (between
            # its queries, and while its page renders), so ours lets in twice the pool, as the README advises
            # for such a database (the default, the pool itself, suits a database nearby).
            extra = {"SERVER_MAX_IN_FLIGHT": str(2 * (pool + overflow))} if server.kind == "ours" else {}
            server.start(database_url=url, base_env=base_env, pool_size=pool, max_overflow=overflow,
                         log_name=f"b-{name}-{server.key}", extra_env=extra)
            if extra:
                server.pool["max_in_flight"] = 2 * (pool + overflow)
            run_wrk(server.port, script, 1000, plan.latency_warm, plan.wrk_threads)  # fills the pool
            server.wait_idle(plan.idle_limit)
            database.reset()

        # (prefix of the cells, wrk script, open-loop mix name) of each mix measured.
        mixes = [(prefix, script, name) for prefix, script, name in (("", "mix.lua", "anon"),
                                                                    ("li_", "loggedin.lua", "loggedin"))
                 if name in parts]
        for prefix, script, mix_name in mixes:
            closed = f"{prefix}mix_c1000"
            for server in SERVERS:
                start(server, f"{prefix}closed", script)
                try:
                    cells = out.setdefault(server.key, {})
                    cells["pool"] = server.pool
                    cells[closed] = measured(server, lambda port=server.port, s=script: run_wrk(
                        port, s, 1000, plan.latency_closed, plan.wrk_threads))
                    _say(_cell_line(server, closed, cells[closed]))
                finally:
                    server.stop()
            # Open loop at fixed rates: 80% of what the 50-thread baseline sustained closed-loop, and 80% of
            # what ours sustained (one rate if they are within 25% of each other).
            candidates = sorted([
                (max(5.0, 0.8 * out["base50"][closed]["rps"]), "80% of baseline-50's closed-loop"),
                (max(5.0, 0.8 * out["ours"][closed]["rps"]), "80% of ours' closed-loop")])
            if candidates[1][0] < 1.25 * candidates[0][0]:
                candidates = [candidates[1]]
            rates = [(f"{prefix}open_{'low' if index == 0 and len(candidates) > 1 else 'high'}", rate, why)
                     for index, (rate, why) in enumerate(candidates)]
            out[f"{prefix}open_loop"] = [{"cell": name, "rate": round(rate, 1), "why": why}
                                         for name, rate, why in rates]
            for server in SERVERS:
                start(server, f"{prefix}open", script)
                try:
                    for index, (name, rate, _why) in enumerate(rates):
                        if index:
                            server.wait_idle(plan.idle_limit)
                            database.reset()
                        cell = measured(server, lambda port=server.port, r=rate, m=mix_name: run_openloop(
                            port, r, plan.open_loop, m))
                        out[server.key][name] = cell
                        _say(_cell_line(server, f"{name} {rate:.0f}/s", cell)
                             + f"  (open loop, p99 incl. failures {cell['p99_all_ms']:.0f} ms)")
                finally:
                    server.stop()
    finally:
        _stop_process(proxy)
        with contextlib.suppress(ValueError):
            _children.remove(proxy)


def scenario_c(plan: Plan, database: Database, base_env: dict, data: dict, results: dict) -> None:
    """(c) The registration rush against ours (the baseline has no live counter)."""
    _say(f"== (c) registration rush: {plan.rush_students} students for 100 seats within ~1 s, "
         f"{plan.rush_streams} open seat streams")
    server = SERVERS[0]
    server.start(database_url=database.async_url(), base_env=base_env, pool_size=OURS_POOL[0],
                 max_overflow=OURS_POOL[1], log_name="c-ours")
    try:
        run_wrk(server.port, "detail.lua", 50, plan.warm, plan.wrk_threads)  # warm-up
        server.wait_idle(plan.idle_limit)
        database.reset()
        out_file = LOGS / "rush.json"

        def rush() -> dict:
            command = [PYTHON, "-m", "bench.rush", "--port", str(server.port), "--students", str(plan.rush_students),
                       "--streams", str(plan.rush_streams), "--spread", "1.0", "--data", str(TOKENS),
                       "--out", str(out_file), *_pid_args(server)]
            subprocess.run(command, cwd=ROOT, timeout=400, check=True)  # noqa: S603 - our own module
            raw = json.loads(out_file.read_text())
            return {"requests": sum(1 for post in raw["posts"] if post["status"]), "raw": raw}

        cell = measured(server, rush)
    finally:
        server.stop()
    raw = cell.pop("raw")
    results["c"] = {"ours": {**cell, **rush_check(database, data, raw)}}
    c = results["c"]["ours"]
    _say(f"  confirmed {c['confirmed']} (want 100), waitlisted {c['waitlisted']}, errors {c['errors']}, "
         f"waitlist in lock order: {c['waitlist_in_lock_order']}, streams full within 1 s: "
         f"{c['streams_full_within_1s']}/{c['streams']} (max {c['full_delay_max_ms']} ms, "
         f"p99 {c['full_delay_p99_ms']} ms), CPU {c['cpu_ms_per_req']:.2f} ms/registration")
    scenario_c_lottery(plan, database, base_env, data, results)


def scenario_c_lottery(plan: Plan, database: Database, base_env: dict, data: dict, results: dict) -> None:
    """(c) again with the rush event opening by lottery (issue 19): every ask is an entry (one INSERT, no
    lock); once all are answered, `manage.py drawlotteries rush --now` draws, and the open streams hear
    "full" from the draw."""
    _say(f"== (c) the same rush, the event opening by lottery: {plan.rush_students} entries, then the draw")
    database.reset()
    with database.connect() as connection:
        connection.execute("UPDATE events SET registration_opens_at = now() - interval '1 minute', "
                           "lottery_minutes = 10, lottery_seed = NULL, lottery_drawn_at = NULL WHERE slug = 'rush'")
    server = SERVERS[0]
    server.start(database_url=database.async_url(), base_env=base_env, pool_size=OURS_POOL[0],
                 max_overflow=OURS_POOL[1], log_name="c-lottery")
    try:
        run_wrk(server.port, "detail.lua", 50, plan.warm, plan.wrk_threads)  # warm-up
        server.wait_idle(plan.idle_limit)
        out_file = LOGS / "rush-lottery.json"
        draw = [PYTHON, "manage.py", "drawlotteries", "rush", "--now"]

        def rush() -> dict:
            command = [PYTHON, "-m", "bench.rush", "--port", str(server.port), "--students", str(plan.rush_students),
                       "--streams", str(plan.rush_streams), "--spread", "1.0", "--data", str(TOKENS),
                       "--out", str(out_file), "--draw", json.dumps(draw), *_pid_args(server)]
            if os.environ.get("HYPERION_BENCH_SPY_LOTTERY"):  # where an ask's CPU goes (bench/README.md)
                command += ["--spy", os.environ["HYPERION_BENCH_SPY_LOTTERY"]]
            env = {**base_env, "DATABASE_URL": database.async_url(), "LOG_LEVEL": "WARNING"}
            subprocess.run(command, cwd=ROOT, timeout=400, check=True, env=env)  # noqa: S603 - our own module
            raw = json.loads(out_file.read_text())
            return {"requests": sum(1 for post in raw["posts"] if post["status"]), "raw": raw}

        cell = measured(server, rush)
        raw = cell.pop("raw")
        results["c"]["ours_lottery"] = {**cell, **lottery_check(database, raw)}
    finally:
        server.stop()
        with database.connect() as connection:  # the rush event opens first come again
            connection.execute("UPDATE events SET lottery_minutes = NULL, lottery_seed = NULL, "
                               "lottery_drawn_at = NULL WHERE slug = 'rush'")
    c = results["c"]["ours_lottery"]
    _say(f"  entries answered p50 {c['p50_ms']} ms / p99 {c['p99_ms']} ms, errors {c['errors']}; drawn: "
         f"{c['confirmed']} confirmed, {c['waitlisted']} waitlisted, order from the seed: {c['drawn_order_matches']}; "
         f"streams told after the draw p99 {c['result_delay_p99_ms']} ms, max {c['result_delay_max_ms']} ms")


def _pid_args(server: Server) -> list[str]:
    return [argument for pid in server.pids() for argument in ("--server-pid", str(pid))]


def lottery_check(database: Database, raw: dict) -> dict:
    """The lottery cell against the database: the answers' latency, the draw's result and its order (the
    seed recorded with the draw gives it again), and how long after the draw each open stream heard it."""
    from bench.openloop import percentile
    from events.rules.lottery import drawn_order

    posts = raw["posts"]
    with database.connect() as connection:
        event_id, seed, drawn_at = connection.execute(
            "SELECT id, lottery_seed, lottery_drawn_at FROM events WHERE slug = 'rush'").fetchone()
        rows = connection.execute("SELECT user_id, status FROM registrations WHERE event_id = %s "
                                  "ORDER BY status = 'waitlisted', queued_at, id", (event_id,)).fetchall()
    errors = [post for post in posts if post["error"] or post["status"] != 302]
    answer_times = sorted(post["answered"] - post["scheduled"] for post in posts if post["answered"])
    first_sent = min((post["scheduled"] for post in posts if post["scheduled"]), default=None)
    last_answer = max((post["answered"] for post in posts if post["answered"]), default=None)
    users = [row[0] for row in rows]
    delays = []
    if drawn_at is not None:
        delays = sorted((state["full_at"] - drawn_at.timestamp()) * 1000 if state["full_at"] else float("inf")
                        for state in raw["stream_state"])
    return {
        "students": raw["students"], "streams": raw["streams"], "streams_ready": raw["streams_ready"],
        "registrations": len(rows), "errors": len(errors),
        "error_kinds": sorted({str(post["error"] or post["status"]) for post in errors}),
        "confirmed": sum(1 for row in rows if row[1] == "confirmed"),
        "waitlisted": sum(1 for row in rows if row[1] == "waitlisted"),
        "entries_left": sum(1 for row in rows if row[1] == "entered"),
        "drawn_order_matches": seed is not None and users == drawn_order(users, seed),
        "rush_seconds": round(last_answer - first_sent, 2) if first_sent and last_answer else None,
        "p50_ms": round(percentile(answer_times, 50) * 1000, 1),
        "p99_ms": round(percentile(answer_times, 99) * 1000, 1),
        "draw_seconds": round(raw["draw"]["done"] - raw["draw"]["started"], 2) if raw.get("draw") else None,
        "draw_output": (raw.get("draw") or {}).get("output", "").strip()[-300:],
        "result_delay_p50_ms": round(percentile(delays, 50), 1) if delays else None,
        "result_delay_p99_ms": round(percentile(delays, 99), 1) if delays else None,
        "result_delay_max_ms": round(delays[-1], 1) if delays else None,
        "streams_told_within_2s": sum(1 for delay in delays if delay <= 2000),
        **_posts_cpu(raw),
    }


def _posts_cpu(raw: dict) -> dict:
    """The server's CPU per POST while the POSTs were answered (the streams' opening and the draw excluded)."""
    answered = sum(1 for post in raw["posts"] if post["status"])
    cpu = raw.get("posts_cpu_s")
    return {"posts_cpu_ms_per_post": round(cpu * 1000 / answered, 2) if cpu is not None and answered else None}


def rush_check(database: Database, data: dict, raw: dict) -> dict:
    """Compare what the clients saw with what the database holds."""
    import hashlib

    from bench.openloop import percentile

    posts = raw["posts"]
    user_of_token = {}
    with database.connect() as connection:
        event_id = connection.execute("SELECT id FROM events WHERE slug = %s", (raw["slug"],)).fetchone()[0]
        for token_hash, user_id in connection.execute("SELECT token_hash, user_id FROM auth_sessions"):
            user_of_token[token_hash] = user_id
        rows = connection.execute(
            "SELECT id, user_id, status, queued_at FROM registrations WHERE event_id = %s ORDER BY queued_at, id",
            (event_id,)).fetchall()
    index_of_user = {user_of_token[hashlib.sha256(token.encode()).hexdigest()]: index
                     for index, token in enumerate(data["sessions"][:raw["students"]])}
    confirmed = [row for row in rows if row[2] == "confirmed"]
    waitlisted = [row for row in rows if row[2] == "waitlisted"]
    errors = [post for post in posts if post["error"] or post["status"] != 302]
    # Lock order: queued_at is taken under the event's row lock; ids come from the same INSERT.
    ids_follow_queue = all(a[0] < b[0] for a, b in zip(rows, rows[1:], strict=False))
    queue_strict = all(a[3] < b[3] for a, b in zip(rows, rows[1:], strict=False))
    confirmed_first = (not confirmed or not waitlisted
                       or max(row[3] for row in confirmed) < min(row[3] for row in waitlisted))
    # The order the server answered in (client side) against the lock order.
    answered = {index_of_user[row[1]]: posts[index_of_user[row[1]]]["answered"] for row in rows
                if row[1] in index_of_user and posts[index_of_user[row[1]]]["answered"]}
    lock_rank = [index_of_user[row[1]] for row in rows if index_of_user.get(row[1]) in answered]
    answer_order = sorted(lock_rank, key=lambda index: answered[index])
    position_in_answers = {index: rank for rank, index in enumerate(answer_order)}
    answer_positions = [position_in_answers[index] for index in lock_rank]
    inversions = _inversions(answer_positions)
    pairs = len(answer_positions) * (len(answer_positions) - 1) // 2
    displacement = [abs(rank - position) for rank, position in enumerate(answer_positions)]
    send_inversions = _inversions(lock_rank)  # lock order against the order the POSTs were sent
    # Streams: when each saw full=true, after the 100th confirmation (its queued_at, taken under the lock a
    # little before its commit: the delays below are slightly overstated, never understated).
    streams = raw["stream_state"]
    delays = []
    hundredth = confirmed[99][3].timestamp() if len(confirmed) >= 100 else None
    if hundredth is not None:
        delays = sorted((state["full_at"] - hundredth) * 1000 if state["full_at"] else float("inf")
                        for state in streams)
    finite = [delay for delay in delays if delay != float("inf")]
    answer_times = sorted(post["answered"] - post["scheduled"] for post in posts if post["answered"])
    first_sent = min((post["scheduled"] for post in posts if post["scheduled"]), default=None)
    last_answer = max((post["answered"] for post in posts if post["answered"]), default=None)
    return {
        **_posts_cpu(raw),
        "students": raw["students"], "streams": raw["streams"], "streams_ready": raw["streams_ready"],
        "streams_ready_s": round(raw["streams_ready_s"], 2),
        "registrations": len(rows), "confirmed": len(confirmed), "waitlisted": len(waitlisted),
        "errors": len(errors), "error_kinds": sorted({str(post["error"] or post["status"]) for post in errors}),
        "exactly_100_confirmed": len(confirmed) == 100,
        "waitlist_in_lock_order": ids_follow_queue and queue_strict and confirmed_first,
        "ids_follow_queued_at": ids_follow_queue, "queued_at_strict": queue_strict,
        "confirmed_before_waitlisted": confirmed_first,
        "answer_order_inversions": inversions, "answer_order_pairs": pairs,
        "answer_order_concordance": round(1 - inversions / pairs, 4) if pairs else None,
        "answer_order_max_displacement": max(displacement, default=0),
        "send_order_inversions": send_inversions,
        "rush_seconds": round(last_answer - first_sent, 2) if first_sent and last_answer else None,
        "p50_ms": round(percentile(answer_times, 50) * 1000, 1),
        "p99_ms": round(percentile(answer_times, 99) * 1000, 1),
        "rps": round(len(answer_times) / (last_answer - first_sent), 1) if first_sent and last_answer else 0,
        "streams_full": len(finite), "streams_full_within_1s": sum(1 for delay in finite if delay <= 1000),
        "full_delay_p50_ms": round(percentile(delays, 50), 1) if delays else None,
        "full_delay_p99_ms": round(percentile(delays, 99), 1) if delays else None,
        "full_delay_max_ms": round(delays[-1], 1) if delays else None,
        "stream_events_mean": round(sum(state["events"] for state in streams) / max(len(streams), 1), 1),
        "stream_errors": sum(1 for state in streams if state["error"]),
    }


def _inversions(values: list[int]) -> int:
    """Pairs out of order (merge sort count)."""
    def sort(items: list[int]) -> tuple[list[int], int]:
        if len(items) < 2:
            return items, 0
        middle = len(items) // 2
        left, a = sort(items[:middle])
        right, b = sort(items[middle:])
        merged, count, i, j = [], a + b, 0, 0
        while i < len(left) and j < len(right):
            if left[i] <= right[j]:
                merged.append(left[i])
                i += 1
            else:
                merged.append(right[j])
                count += len(left) - i
                j += 1
        return merged + left[i:] + right[j:], count
    return sort(values)[1]


# The machine.

def source() -> dict:
    """Which code was measured: the commit, and tracked files changed outside bench/ (uncommitted)."""
    if os.environ.get("BENCH_SOURCE_COMMIT"):
        return {"commit": os.environ["BENCH_SOURCE_COMMIT"], "changed": [], "how": "snapshot (git archive)"}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,  # noqa: S607 - read-only git query
                                check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,  # noqa: S607 - idem
                                capture_output=True, text=True, check=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "changed": [], "how": "no git"}
    changed = [line[3:] for line in status if not line[3:].startswith("bench/")]
    return {"commit": commit, "changed": changed, "how": "work tree"}


def machine(database: Database) -> dict:
    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())
    memory_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)  # noqa: S607 - wrk on PATH
    versions = {}
    for package in ("django", "sqlalchemy", "asyncpg", "psycopg", "uvicorn", "uvloop", "httptools", "gunicorn",
                    "jinja2"):
        from importlib.metadata import version

        versions[package] = version(package)
    facts = database.facts()
    return {
        "nproc": os.cpu_count(), "cpu_model": cpu_model, "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "postgresql": facts["version"], "max_connections": facts["max_connections"],
        "connections_in_use_at_start": facts["in_use"], "wrk": (wrk.stdout or wrk.stderr).split(" [")[0].strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "versions": versions,
        "load_average_at_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds per cell: a smoke run")
    parser.add_argument("--scenarios", default="a,b,c", help="which of a, b, c to run (default: all)")
    parser.add_argument("--pg-url", default=os.environ.get("HYPERION_BENCH_PG_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="an admin URL of the PostgreSQL server (127.0.0.1 only); hyperion_bench is "
                             "dropped and created there")
    parser.add_argument("--own-postgres", action="store_true",
                        help="start a throw-away PostgreSQL (max_connections 400) from the installed binaries "
                             "instead of using --pg-url, and remove it at the end")
    parser.add_argument("--reuse-data", action="store_true",
                        help="keep hyperion_bench and the tokens of the previous run (for working on the bench)")
    parser.add_argument("--output", default="latest", help="name of the result files in bench/results/")
    parser.add_argument("--only", default="anon,loggedin",
                        help="which cells of (a) and (b): anon (visitors' pages and mix), loggedin (logged-in "
                             "students' pages and mix, two workers); default both")
    args = parser.parse_args(argv)
    scenarios = {name.strip() for name in args.scenarios.split(",") if name.strip()}
    if not scenarios <= {"a", "b", "c"}:
        parser.error("--scenarios takes a, b and/or c")
    parts = {name.strip() for name in args.only.split(",") if name.strip()}
    if not parts or not parts <= {"anon", "loggedin"}:
        parser.error("--only takes anon and/or loggedin")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    plan = Plan.make(args.quick)
    atexit.register(_stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    own = None
    if args.own_postgres:
        if args.reuse_data:
            parser.error("--reuse-data needs a PostgreSQL that outlives the run: not with --own-postgres")
        own = OwnPostgres()
        atexit.register(own.stop)
        args.pg_url = own.start()
    database = Database(args.pg_url)
    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict = {"quick": args.quick, "plan": plan.__dict__, "mix": mix.MIX, "loggedin_mix": mix.LOGGEDIN_MIX,
                     "parts": sorted(parts), "source": source(),
                     "postgres": "own throw-away cluster (--own-postgres)" if own else "the server at --pg-url"}
    try:
        results["machine"] = machine(database)
        _say(f"== machine: {results['machine']['nproc']} cores, {results['machine']['cpu_model']}, "
             f"PostgreSQL {results['machine']['postgresql']}, "
             f"max_connections {results['machine']['max_connections']}")
        if args.reuse_data and TOKENS.exists():
            data = json.loads(TOKENS.read_text())
            database.marks = data["marks"]
            results["dataset"] = {"reused": True, "sessions": len(data["sessions"])}
        else:
            _say("== data set (bench.dataset) into hyperion_bench")
            results["dataset"] = build_dataset(database, plan)
            _say(f"   {results['dataset']}")
            data = json.loads(TOKENS.read_text())
        data["open_slugs"] = open_slugs(database)
        results["dataset"]["open_events"] = len(data["open_slugs"])
        TOKENS.write_text(json.dumps(data))  # the open-loop client reads the open events from it too
        _write_wrk_data(data)
        facts = database.facts()
        # Keep every pool within max_connections, with room for other clients of this server.
        budget = max(20, facts["max_connections"] - facts["in_use"] - 12)
        results["connection_budget"] = budget
        base_env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL",)}
        # PYTHONOPTIMIZE=2 (python -OO) as the README serves production: no docstrings or asserts in memory,
        # for every server alike.
        base_env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), SECURE_SSL_REDIRECT="false",
                        ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
                        PYTHONOPTIMIZE="2", DB_APPLICATION_NAME="hyperion-bench")
        if "a" in scenarios:
            scenario_a(plan, database, base_env, data, results, budget, parts)
            report.write(results, RESULTS, args.output)
        if "b" in scenarios:
            scenario_b(plan, database, base_env, results, budget, parts)
            report.write(results, RESULTS, args.output)
        if "c" in scenarios:
            scenario_c(plan, database, base_env, data, results)
        results["seconds"] = round(time.monotonic() - started)
        results["load_average_at_end"] = os.getloadavg()
        paths = report.write(results, RESULTS, args.output)
        _say(f"== done in {results['seconds']} s: " + ", ".join(str(path.relative_to(ROOT)) for path in paths))
        _say(report.markdown(results))
    except KeyboardInterrupt:
        _say("interrupted: stopping the servers")
        return 130
    finally:
        _stop_all()
        if own is not None:
            own.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
