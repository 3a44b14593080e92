"""The registration rush, client side: ``--streams`` anonymous visitors keep the rush event's live seat
counter open (GET /events/<slug>/seats/, server-sent events) while ``--students`` distinct logged-in
students POST a registration for it, open-loop, spread evenly over ``--spread`` seconds (each on its own
new connection, with its own session and CSRF pair). Writes what each side saw, with wall-clock times, for
bench.run to check against the database. Bounded: every wait has a deadline. Loopback only.

``--draw COMMAND``: the event opens by lottery; once every POST is answered (each an entry), COMMAND (a
JSON list: ``manage.py drawlotteries rush --now``) closes the window and draws, and the streams then hear
"full" from the draw.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httptools

from bench import procstats
from bench.httpclient import Connection, SseStream, raw_request


async def run(*, host: str, port: int, slug: str, data: dict, students: int, streams: int, spread: float,
              request_timeout: float, draw: list[str] | None = None, server_pids: list[int] | None = None,
              spy: str | None = None) -> dict:
    loop = asyncio.get_running_loop()
    address = f"{host}:{port}"
    stream_state = [{"opened": None, "first": None, "full_at": None, "events": 0, "error": None}
                    for _ in range(streams)]
    all_ready = asyncio.Event()
    all_settled = asyncio.Event()  # every stream saw full=true, or failed
    ready_count = settled_count = 0
    connect_slots = asyncio.Semaphore(100)

    def settle() -> None:
        nonlocal settled_count
        settled_count += 1
        if settled_count == streams:
            all_settled.set()

    async def watch(index: int) -> None:
        state = stream_state[index]
        connection = None

        def on_event(name: str, payload: str) -> None:
            nonlocal ready_count
            if name != "seats":
                return
            now = time.time()
            state["events"] += 1
            if state["first"] is None:
                state["first"] = now
                ready_count += 1
                if ready_count == streams:
                    all_ready.set()
            if state["full_at"] is None and json.loads(payload).get("full"):
                state["full_at"] = now
                settle()

        try:
            async with connect_slots:
                connection = await asyncio.wait_for(Connection.open(host, port), request_timeout)
            state["opened"] = time.time()
            parser = SseStream(on_event)
            await connection.request(raw_request("GET", f"/events/{slug}/seats/", address,
                                                 {"Accept": "text/event-stream"}), on_chunk=parser.feed)
            state["error"] = "stream ended"
            if state["full_at"] is None:
                settle()
        except asyncio.CancelledError:
            if connection is not None:
                connection.close()
            raise
        except (OSError, TimeoutError, ValueError, httptools.HttpParserError) as error:
            state["error"] = type(error).__name__
            if state["full_at"] is None:
                settle()

    watchers = [asyncio.create_task(watch(index)) for index in range(streams)]
    opened_at = time.time()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_ready.wait(), timeout=60)
    streams_ready_s = time.time() - opened_at

    posts = [{"index": index, "scheduled": None, "answered": None, "status": None, "error": None}
             for index in range(students)]

    async def register(index: int, scheduled: float) -> None:
        post = posts[index]
        secret, masked = data["csrf"][index]
        body = f"csrfmiddlewaretoken={quote(masked)}&confirm_overlap=yes".encode()
        raw = raw_request("POST", f"/events/{slug}/register/", address, {
            "Cookie": f"csrftoken={secret}; hyperion_session={data['sessions'][index]}",
            "Content-Type": "application/x-www-form-urlencoded"}, body, close=True)
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        post["scheduled"] = time.time()
        connection = None
        try:
            connection = await asyncio.wait_for(Connection.open(host, port), request_timeout)
            status, headers, _body, _keep = await asyncio.wait_for(connection.request(raw), request_timeout)
            post["answered"], post["status"] = time.time(), status
            post["location"] = headers.get(b"location", b"").decode()
        except (OSError, TimeoutError, ValueError, httptools.HttpParserError) as error:
            post["error"] = type(error).__name__
        finally:
            if connection is not None:
                connection.close()

    start = loop.time() + 0.5
    senders = [asyncio.create_task(register(index, start + index * spread / students)) for index in range(students)]
    await asyncio.sleep(max(0.0, start - loop.time() - 0.05))
    # The server's CPU while the POSTs are answered, and only then: the streams' opening before and the draw
    # after are not the asks' cost.
    cpu_before = procstats.cpu_seconds(server_pids) if server_pids else None
    sampler = _spy(server_pids[0], spy) if spy and server_pids else None
    await asyncio.wait(senders, timeout=spread + request_timeout + 30)
    posts_done = time.time()
    posts_cpu_s = procstats.cpu_seconds(server_pids) - cpu_before if cpu_before is not None else None
    if sampler is not None:
        sampler.send_signal(signal.SIGINT)
        await asyncio.to_thread(sampler.wait, 60)
    drew = None
    if draw:
        process = await asyncio.create_subprocess_exec(*draw, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
        drew = {"started": posts_done, "done": time.time(), "exit": process.returncode,
                "output": output.decode(errors="replace")[-2000:]}
    # Every stream should now hear "full": wait for the last ones, bounded.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_settled.wait(), timeout=30)
    for task in senders + watchers:
        task.cancel()
    await asyncio.gather(*senders, *watchers, return_exceptions=True)
    return {"slug": slug, "students": students, "streams": streams, "spread_s": spread,
            "streams_ready": ready_count, "streams_ready_s": streams_ready_s, "posts_done": posts_done,
            "posts_cpu_s": posts_cpu_s, "posts": posts, "stream_state": stream_state, "draw": drew}


def _spy(pid: int, out: str) -> subprocess.Popen:
    """py-spy on the server while the POSTs are answered (``--spy FILE``: raw stacks, for ``bench.profile``'s
    layers): where an ask's CPU goes."""
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen([py_spy, "record", "-r", "200", "-p", str(pid), "-f", "raw", "-o", out,  # noqa: S603
                             "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slug", default="rush")
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which the POSTs leave")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--data", required=True, help="tokens JSON written by bench.run")
    parser.add_argument("--out", required=True)
    parser.add_argument("--draw", help="JSON list: the command that draws once every POST is answered")
    parser.add_argument("--server-pid", type=int, action="append", default=[],
                        help="the server's processes, for the CPU spent while the POSTs are answered")
    parser.add_argument("--spy", help="py-spy's raw stacks of the first server process during the POSTs")
    args = parser.parse_args()
    if not args.host.startswith("127."):
        raise SystemExit("loopback targets only")
    with open(args.data) as file:
        data = json.load(file)
    if args.students > len(data["sessions"]):
        raise SystemExit(f"only {len(data['sessions'])} sessions in the data set")
    import uvloop

    result = uvloop.run(run(host=args.host, port=args.port, slug=args.slug, data=data, students=args.students,
                            streams=args.streams, spread=args.spread, request_timeout=args.timeout,
                            draw=json.loads(args.draw) if args.draw else None, server_pids=args.server_pid,
                            spy=args.spy))
    with open(args.out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
