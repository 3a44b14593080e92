"""Open-loop (fixed-rate) load: requests leave on a fixed schedule whatever the server answers, and each
latency is counted from its scheduled send time, so a server that falls behind shows its queue (which
closed-loop tools such as wrk hide once the accept queue fills). Bounded in count (rate × duration) and
in time (duration + timeout). Loopback only.

    python -m bench.openloop --port 8001 --rate 300 --duration 15 --data bench/results/tokens.json --out x.json
    python -m bench.openloop ... --mix loggedin   # the logged-in students' mix (bench/mix.py)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time

import httptools

from bench import mix
from bench.httpclient import Connection, raw_request


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(*, host: str, port: int, rate: float, duration: float, request_timeout: float, max_open: int,
              data: dict, seed: int, mix_name: str = "anon", trace: list | None = None) -> dict:
    """``trace``: if given, gets one [scheduled offset s, kind, latency s, status] per answered request, to see
    which requests and which moments of the run make the tail."""
    loop = asyncio.get_running_loop()
    timeout = request_timeout
    rng = random.Random(seed)  # noqa: S311 - picks pages for a load test, not secrets
    total = int(rate * duration)
    plan = []
    kinds = []
    for _ in range(total):
        kind = mix.pick(rng, mix_name)
        method, path, headers, body = mix.request_for(kind, data, rng, loggedin=mix_name == "loggedin")
        plan.append(raw_request(method, path, f"{host}:{port}", headers, body))
        kinds.append(kind)
    idle: list[Connection] = []
    open_count = 0
    latencies: list[float] = []
    counts = {"sent": 0, "ok": 0, "non_2xx_3xx": 0, "connect": 0, "read": 0, "timeout": 0, "client_cap": 0}
    tasks: set[asyncio.Task] = set()

    async def one(scheduled: float, raw: bytes, kind: str) -> None:
        nonlocal open_count
        connection = idle.pop() if idle else None
        try:
            if connection is None:
                open_count += 1
                try:
                    connection = await asyncio.wait_for(Connection.open(host, port), timeout)
                except (OSError, TimeoutError):
                    open_count -= 1
                    counts["connect"] += 1
                    return
            remaining = scheduled + timeout - loop.time()
            status, _headers, _body, keep_alive = await asyncio.wait_for(connection.request(raw), remaining)
        except TimeoutError:
            counts["timeout"] += 1
            connection.close()
            open_count -= 1
            return
        except (OSError, ValueError, httptools.HttpParserError):
            counts["read"] += 1
            if connection is not None:
                connection.close()
                open_count -= 1
            return
        latencies.append(loop.time() - scheduled)
        if trace is not None:
            trace.append([round(scheduled - start, 3), kind, round(latencies[-1], 4), status])
        counts["ok" if 200 <= status < 400 else "non_2xx_3xx"] += 1
        if keep_alive:
            idle.append(connection)
        else:
            connection.close()
            open_count -= 1

    start = loop.time() + 0.2
    wall_start = time.time() + 0.2
    for index, raw in enumerate(plan):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if open_count >= max_open and not idle:
            counts["client_cap"] += 1  # the server holds max_open requests already: count it as refused
            continue
        counts["sent"] += 1
        task = asyncio.create_task(one(scheduled, raw, kinds[index]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(list(tasks), timeout=timeout + 5)
    for task in list(tasks):
        task.cancel()
    for connection in idle:
        connection.close()
    elapsed = loop.time() - start
    latencies.sort()
    failures = counts["non_2xx_3xx"] + counts["connect"] + counts["read"] + counts["timeout"] + counts["client_cap"]
    # Percentiles over every scheduled request, a failed one counting as slower than any answer.
    everything = latencies + [math.inf] * (total - len(latencies))
    return {
        "rate": rate, "duration": duration, "scheduled": total, **counts, "errors": failures,
        "completed": len(latencies), "elapsed_s": elapsed, "wall_start": wall_start,
        "throughput": counts["ok"] / duration,  # successful answers per second of sending
        "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else math.nan,
        "p50_all_ms": percentile(everything, 50) * 1000, "p99_all_ms": percentile(everything, 99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds of sending")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds from the scheduled time")
    parser.add_argument("--max-open", type=int, default=3000, help="connections at most (then: counted refused)")
    parser.add_argument("--data", required=True, help="tokens JSON written by bench.run")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--mix", default="anon", choices=sorted(mix.MIXES),
                        help="anon: the visitors' mix; loggedin: logged-in students only (bench/mix.py)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--trace", help="also write each answered request (scheduled offset, kind, latency, "
                                        "status) to this JSON file")
    args = parser.parse_args()
    if not args.host.startswith("127."):
        raise SystemExit("loopback targets only")
    with open(args.data) as file:
        data = json.load(file)
    import uvloop

    trace: list | None = [] if args.trace else None
    result = uvloop.run(run(host=args.host, port=args.port, rate=args.rate, duration=args.duration,
                            request_timeout=args.timeout, max_open=args.max_open, data=data, seed=args.seed,
                            mix_name=args.mix, trace=trace))
    if args.trace:
        with open(args.trace, "w") as file:
            json.dump(sorted(trace or []), file)
    with open(args.out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
