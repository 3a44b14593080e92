"""Where a logged-in request's CPU goes: each page alone under wrk (c=50), sampled by py-spy, split by layer.

    source scripts/bootstrap.sh --group bench         # once: the bench group (py-spy, psycopg, gunicorn)
    .venv/bin/python -m bench.profile                 # every page, the data set built first (~3 min)
    .venv/bin/python -m bench.profile --reuse-data    # keep the previous profile's data set
    .venv/bin/python -m bench.profile --pages my_events,detail --seconds 8

It uses its own database (`hyperion_profile` on the benchmark's PostgreSQL, dropped and created like
`hyperion_bench`), the benchmark's data set and server command (bench/run.py: one uvicorn worker, production
settings, PYTHONOPTIMIZE=2), and prints for each page the CPU per request (the server's utime + stime over the
completed requests, as the benchmark counts it) and the share of py-spy's samples in each layer. A sample
belongs to the layer of its innermost frame that belongs to any layer (so SQLAlchemy code called from a view
counts as SQL, Jinja2's code called from Django's render counts as rendering). Figures only: nothing asserted.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import run

# Every request carries what a logged-in student's browser keeps: the session and the CSRF cookie.
_LUA = """
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local page = os.getenv("PROFILE_PAGE")
function request()
   local pair = pick(data.csrf)
   local cookie = "csrftoken=" .. pair[1] .. "; hyperion_session=" .. pick(data.sessions)
   if page == "home" then return wrk.format("GET", "/", {Cookie = cookie}) end
   if page == "detail" then return wrk.format("GET", "/events/" .. pick(data.slugs) .. "/", {Cookie = cookie}) end
   if page == "my_events" then return wrk.format("GET", "/me/events/", {Cookie = cookie}) end
   if page == "calendar" then return wrk.format("GET", "/calendar/", {Cookie = cookie}) end
   if page == "feed" then return wrk.format("GET", "/feeds/me/" .. pick(data.feeds) .. ".ics") end
   if page == "floor" then return wrk.format("GET", "/healthz", {Cookie = cookie}) end
   if page == "register" or page == "register_form" then
      -- register: confirmed from the overlap page; register_form: what the event page's form sends (as the
      -- benchmark's cell), the overlap warning checked by the service
      local confirm = page == "register" and "confirm_overlap=yes&" or ""
      return wrk.format("POST", "/events/" .. pick(data.open_slugs) .. "/register/",
                        {Cookie = cookie, ["Content-Type"] = "application/x-www-form-urlencoded"},
                        confirm .. "csrfmiddlewaretoken=" .. pair[2])
   end
   error("unknown page " .. page)
end
"""
# The bench group installs py-spy into the venv, beside this interpreter (not on PATH unless activated).
_PY_SPY = str(Path(sys.executable).with_name("py-spy"))

PAGES = ["floor", "home", "detail", "my_events", "calendar", "feed", "register", "register_form"]

# (layer, what a frame's file path starts with), first match wins for a frame; a sample goes to its innermost
# frame that matches any layer. py-spy names files relative to their sys.path entry ("sqlalchemy/engine/…").
LAYERS = [
    ("asyncpg (driver)", ("asyncpg/",)),
    ("SQLAlchemy", ("sqlalchemy/", "greenlet/")),
    ("Jinja2 rendering", ("jinja2/", "markupsafe/", "<template>", "templates/")),
    ("presenters and row mapping", ("events/catalog/presenters.py", "events/registration/presenters.py",
                                    "events/catalog/calendar.py", "events/feeds/", "icalendar/")),
    ("queries (ours)", ("events/catalog/queries.py", "events/registration/", "events/outbox.py",
                        "hyperion/db.py", "events/live/")),
    ("session lookup (ours)", ("events/accounts/auth.py",)),
    ("CSRF, messages (Django)", ("django/middleware/csrf.py", "django/contrib/messages/")),
    ("Django handler, middleware, URLs, i18n", ("django/", "asgiref/", "hyperion/")),
    ("uvicorn, httptools, event loop", ("uvicorn/", "httptools/", "uvloop/", "asyncio/")),
    ("views (ours)", ("events/",)),
]
_FRAME_FILE = re.compile(r"\((.*?)(?::\d+)?\)$")


def layer_of(stack: list[str]) -> str:
    for frame in reversed(stack):  # innermost last in py-spy's raw (collapsed) format
        match = _FRAME_FILE.search(frame)
        path = match.group(1) if match else frame
        for name, starts in LAYERS:
            if path.startswith(starts):
                return name
    return "other"


def split_by_layer(raw: Path) -> dict[str, float]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        counts[layer_of(frames)] += int(count)
    total = sum(counts.values()) or 1
    return {name: counts[name] / total for name, _ in sorted(counts.items(), key=lambda item: -item[1])}


def profile_page(server: run.Server, page: str, seconds: float, out: Path, warm: float,
                 connections: int = 50) -> dict:
    env = {**os.environ, "BENCH_WRK_DATA": str(run.WRK_DATA), "BENCH_LUA_DIR": str(run.BENCH / "lua"),
           "PROFILE_PAGE": page, "BENCH_KIND": "mix"}
    # "mix": the benchmark's logged-in mix (bench/lua/loggedin.lua), as (a) and (b) send it.
    script = run.BENCH / "lua" / "loggedin.lua" if page == "mix" else out / "profile.lua"
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "--timeout", "10s", "-s",
               str(script), f"http://127.0.0.1:{server.port}/"]
    # Warm-up, not measured: 2,000 students' sessions and registrations get into memory, as on a busy evening.
    subprocess.run([*command[:3], f"-d{warm:.0f}s", *command[4:]], env=env, capture_output=True,  # noqa: S603 - wrk
                   timeout=warm + 60, check=False)
    server.wait_idle()
    raw = out / f"{page}.txt"
    spy = subprocess.Popen([_PY_SPY, "record", "-r", "100", "-p", str(server.process.pid), "-d",  # noqa: S603, S607 - py-spy
                            str(int(seconds)), "-f", "raw", "-o", str(raw), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = server.cpu()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)  # noqa: S603 - wrk
    cpu = server.cpu() - before
    spy.wait(timeout=seconds + 60)
    line = next((line for line in done.stdout.splitlines() if line.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no figures for {page}: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    result = run.json.loads(line[len("WRKJSON "):])
    requests = result["requests"]
    return {"page": page, "requests": requests, "cpu_ms": cpu * 1000 / requests if requests else None,
            "errors": result["status"] + result["timeout"] + result["read"] + result["connect"],
            "p99_ms": result["p99_us"] / 1000,
            "layers": split_by_layer(raw) if raw.exists() else {}}


def _memory_mb(pid: int) -> tuple[float, float]:
    """The server's resident memory now and its peak so far (VmRSS, VmHWM), in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", default=",".join(PAGES), help="of " + ", ".join(PAGES) + ", and mix")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds added to every database round trip (bench/latency_proxy.py), as in (b)")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warm", type=float, default=6, help="seconds of load before each measured one")
    parser.add_argument("--reuse-data", action="store_true")
    parser.add_argument("--page-cache", default="30", help="PAGE_CACHE_SECONDS of the server (0: off)")
    parser.add_argument("--pg-url", default=os.environ.get("HYPERION_BENCH_PG_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    options = parser.parse_args(argv)
    run.DATABASE = "hyperion_profile"
    run.TOKENS = run.RESULTS / "profile-tokens.json"
    run.WRK_DATA = run.RESULTS / "profile-wrk-data.lua"
    database = run.Database(options.pg_url)
    if options.reuse_data and run.TOKENS.exists():
        database.marks = run.json.loads(run.TOKENS.read_text())["marks"]
    else:
        print("building the data set...", flush=True)
        run.build_dataset(database, run.Plan.make(quick=False))
    # wrk's Lua reads the sessions, feeds and slugs from the file bench.run writes (its own name here).
    data = run.json.loads(run.TOKENS.read_text())
    data["open_slugs"] = run.open_slugs(database)
    run._write_wrk_data(data)
    run.LOGS.mkdir(parents=True, exist_ok=True)
    # The benchmark's production settings (bench/run.py main).
    base_env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    base_env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), SECURE_SSL_REDIRECT="false",
                    ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1", PYTHONOPTIMIZE="2",
                    DB_APPLICATION_NAME="hyperion-profile")
    server = run.Server("ours", "ours", "ours", page_cache=options.page_cache != "0")
    out = Path(tempfile.mkdtemp(prefix="hyperion-profile."))
    (out / "profile.lua").write_text(_LUA)
    database_url, pool, extra_env = database.async_url(), 10, {"PAGE_CACHE_SECONDS": options.page_cache}
    proxy = None
    if options.delay:
        # As scenario (b): the proxy between the server and PostgreSQL, a pool sized for the delay and twice
        # the pool let into Django at once.
        port = run.free_port()
        proxy = run._spawn([run.PYTHON, "-m", "bench.latency_proxy", "--port", str(port), "--upstream",
                            f"{database.url.host or '127.0.0.1'}:{database.url.port or 5432}",
                            "--delay", str(options.delay)], env={**os.environ}, log=run.LOGS / "profile-proxy.log")
        run.wait_port(port)
        database_url, pool = database.async_url(host="127.0.0.1", port=port), 60
        extra_env["SERVER_MAX_IN_FLIGHT"] = str(2 * pool)
    try:
        server.start(database_url=database_url, base_env=base_env, pool_size=pool, max_overflow=0,
                     log_name="profile", extra_env=extra_env)
        for page in options.pages.split(","):
            database.reset()
            result = profile_page(server, page, options.seconds, out, options.warm, options.connections)
            rss, peak = _memory_mb(server.process.pid)
            print(f"\n{page}: {result['cpu_ms']:.2f} ms CPU/request, {result['requests']} requests, "
                  f"p99 {result['p99_ms']:.0f} ms, {result['errors']} errors; RSS {rss:.0f} MB after it, "
                  f"{peak:.0f} MB at most since the server started")
            for name, share in result["layers"].items():
                print(f"  {share:6.1%}  {name}")
    finally:
        server.stop()
        if proxy is not None:
            run._stop_process(proxy)
    print(f"\nraw py-spy stacks: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
