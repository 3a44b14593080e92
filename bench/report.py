"""bench/results/<name>.{json,md,png} from the figures bench.run collected."""

from __future__ import annotations

import json
import math
from pathlib import Path

LABELS = {
    "ours": "ours (uvicorn, async)",
    "ours_nocache": "ours, no page cache",
    "base50": "baseline gthread 50",
    "base200": "baseline gthread 200",
    "ours_2w": "ours, 2 workers",
}
SERVERS = ["ours", "ours_nocache", "base50", "base200"]
LOGGEDIN_SINGLE = ("ours", "ours_nocache")
BASELINES = ("base50", "base200")
# Issue 18's logged-in single pages: (cell, title, CPU/request target in ms). The event page is the cell
# "detail_student" of the visitors' section (the same request).
LOGGEDIN_PAGES = [
    ("li_home", "Home `/`", 1.0),
    ("detail_student", "Event page `/events/<random slug>/`", 1.0),
    ("li_my_events", "My events `/me/events/`", 1.0),
    ("li_calendar", "Calendar month `/calendar/`", 1.0),
    ("li_feed", "Personal feed `/feeds/me/<token>.ics` (token only, as a calendar app)", 1.0),
    ("li_register", "Registration POST `/events/<open event>/register/` (first come, seats free)", 2.0),
]


def _clean(value):
    """JSON without NaN/Infinity (null instead)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value


def _ms(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "> timeout"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _num(value, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _ratio(ours, other) -> str:
    if not ours or not other:
        return "–"
    return f"{ours / other:.2f}×"


def _cell(results: dict, scenario: str, server: str, name: str) -> dict | None:
    return results.get(scenario, {}).get(server, {}).get(name)


def _rps(cell: dict) -> float:
    """Completed requests per second (wrk); open loop: successful answers per second of sending."""
    if cell.get("tool") == "openloop":
        return cell["ok"] / cell["duration"] if cell.get("duration") else 0.0
    return cell["rps"]


def _table(results: dict, scenario: str, name: str, servers=SERVERS) -> list[str]:
    lines = ["| server | req/s | CPU ms/req | p50 | p99 | errors | peak threads | peak RSS (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for server in servers:
        cell = _cell(results, scenario, server, name)
        if cell is None:
            continue
        errors = str(cell["errors"])
        if cell.get("error_detail") and cell["errors"]:
            errors += " (" + ", ".join(f"{k} {v}" for k, v in cell["error_detail"].items() if v) + ")"
        elif cell.get("tool") == "openloop" and cell["errors"]:
            errors += " (" + ", ".join(f"{k} {cell[k]}" for k in ("non_2xx_3xx", "connect", "read", "timeout",
                                                                   "client_cap") if cell.get(k)) + ")"
        p99 = cell.get("p99_all_ms", cell["p99_ms"]) if cell.get("tool") == "openloop" else cell["p99_ms"]
        p50 = cell.get("p50_all_ms", cell["p50_ms"]) if cell.get("tool") == "openloop" else cell["p50_ms"]
        if cell.get("tool") == "openloop" and cell["errors"]:
            # A failed request counts as slower than any answer: null in the JSON means "beyond the timeout".
            p50 = math.inf if p50 is None else p50
            p99 = math.inf if p99 is None else p99
        if not cell["requests"]:
            p50 = p99 = None  # nothing answered within the run
        rps = _num(_rps(cell))
        if cell.get("tool") == "openloop" and cell.get("scheduled"):
            rps += f" ({100 * cell['ok'] / cell['scheduled']:.0f}% answered)"
        lines.append(f"| {LABELS[server]} | {rps} | {_num(cell['cpu_ms_per_req'], 2)} | {_ms(p50)} | "
                     f"{_ms(p99)} | {errors} | {cell['peak_threads']} | {_num(cell['peak_rss_mb'])} |")
    ours = _cell(results, scenario, "ours", name)
    if ours:
        for base in (base for base in BASELINES if base in servers):
            other = _cell(results, scenario, base, name)
            if other:
                lines.append(f"| *ours / {LABELS[base]}* | {_ratio(_rps(ours), _rps(other))} | "
                             f"{_ratio(ours['cpu_ms_per_req'], other['cpu_ms_per_req'])} | | | | "
                             f"{_ratio(ours['peak_threads'], other['peak_threads'])} | "
                             f"{_ratio(ours['peak_rss_mb'], other['peak_rss_mb'])} |")
    return lines


def _ours_and_baselines(results: dict, scenario: str, name: str) -> tuple[dict | None, ...]:
    return tuple(_cell(results, scenario, server, name) for server in ("ours", *BASELINES))


def _throughput_rows(where: str, ours: dict | None, others) -> list[tuple[str, str, bool | None]]:
    """A "≥ N× <baseline> throughput" target row for each (baseline cell, N, its name) measured."""
    return [(f"{where}: ≥ {factor}× {name} throughput", _ratio(ours["rps"], other["rps"]),
             ours["rps"] >= factor * other["rps"]) for other, factor, name in others if ours and other]


def targets(results: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target of the issue."""
    rows: list[tuple[str, str, bool | None]] = []
    home = _cell(results, "a", "ours", "home")
    detail = _cell(results, "a", "ours", "detail")
    home_nc = _cell(results, "a", "ours_nocache", "home")
    if home:
        extra = f" (no page cache: {home_nc['cpu_ms_per_req']:.2f} ms)" if home_nc else ""
        rows.append(("home ≤ 1.0 ms CPU/request", f"{home['cpu_ms_per_req']:.2f} ms{extra}",
                     home["cpu_ms_per_req"] <= 1.0))
    if detail:
        floor = _cell(results, "a", "ours", "floor")
        student = _cell(results, "a", "ours", "detail_student")
        notes = ([f"a logged-in student's: {student['cpu_ms_per_req']:.2f} ms"] if student else []) + (
            [f"the floor through Django, /healthz: {floor['cpu_ms_per_req']:.2f} ms"] if floor else [])
        extra = f" ({'; '.join(notes)})" if notes else ""
        rows.append(("event detail ≤ 0.5 ms CPU/request (visitors)", f"{detail['cpu_ms_per_req']:.2f} ms{extra}",
                     detail["cpu_ms_per_req"] <= 0.5))
    top = _cell(results, "a", "ours", "mix_c1000")
    if top:
        rows.append(("c=1000 (mix): ≤ 4 threads", str(top["peak_threads"]), top["peak_threads"] <= 4))
        rows.append(("c=1000 (mix): ≤ 100 MB RSS per worker", f"{top['peak_rss_per_process_mb']:.0f} MB",
                     top["peak_rss_per_process_mb"] <= 100))
        rows.append(("c=1000 (mix): zero errors", str(top["errors"]), top["errors"] == 0))
    ours_b, base50_b, base200_b = _ours_and_baselines(results, "b", "mix_c1000")
    rows += _throughput_rows("(b) c=1000", ours_b, ((base50_b, 5, "baseline-50"), (base200_b, 2, "baseline-200")))
    if ours_b and base50_b and base200_b:
        rows.append(("(b) c=1000: fewer threads than both baselines",
                     f"{ours_b['peak_threads']} vs {base50_b['peak_threads']} / {base200_b['peak_threads']}",
                     ours_b["peak_threads"] < min(base50_b["peak_threads"], base200_b["peak_threads"])))
        rows.append(("(b) c=1000: no more memory than the baselines",
                     f"{ours_b['peak_rss_mb']:.0f} MB vs {base50_b['peak_rss_mb']:.0f} / "
                     f"{base200_b['peak_rss_mb']:.0f} MB",
                     ours_b["peak_rss_mb"] <= min(base50_b["peak_rss_mb"], base200_b["peak_rss_mb"])))
    rows += loggedin_targets(results)
    rush = results.get("c", {}).get("ours")
    if rush:
        rows.append(("(c) rush: exactly 100 confirmed", str(rush["confirmed"]), rush["confirmed"] == 100))
        rows.append(("(c) rush: waitlist in lock (arrival) order", str(rush["waitlist_in_lock_order"]),
                     rush["waitlist_in_lock_order"]))
        rows.append(("(c) rush: zero errors", str(rush["errors"]), rush["errors"] == 0))
        rows.append(("(c) rush: every stream saw full=true within 1 s",
                     f"{rush['streams_full_within_1s']}/{rush['streams']} (max {_ms(rush['full_delay_max_ms'])})",
                     rush["streams_full_within_1s"] == rush["streams"]))
    lot = results.get("c", {}).get("ours_lottery")
    if lot:
        rows.append(("(c) lottery: every ask answered, p99 ≤ 500 ms, zero errors",
                     f"p99 {_ms(lot['p99_ms'])}, {lot['errors']} errors",
                     lot["p99_ms"] <= 500 and lot["errors"] == 0))
        rows.append(("(c) lottery: exactly 100 confirmed, the rest waitlisted, in the seed's order",
                     f"{lot['confirmed']} / {lot['waitlisted']}, seed order {lot['drawn_order_matches']}",
                     lot["confirmed"] == 100 and lot["waitlisted"] == lot["students"] - 100
                     and lot["drawn_order_matches"]))
        rows.append(("(c) lottery: every open page told ≤ 2 s after the draw",
                     f"{lot['streams_told_within_2s']}/{lot['streams']} (max {_ms(lot['result_delay_max_ms'])})",
                     lot["streams_told_within_2s"] == lot["streams"]))
    return rows


def _open_loop_at_base50(results: dict, prefix: str) -> str | None:
    """The open-loop cell at 80% of the 50-thread baseline's closed-loop capacity."""
    for entry in results.get("b", {}).get(f"{prefix}open_loop", []):
        if "baseline-50" in entry["why"] or len(results["b"][f"{prefix}open_loop"]) == 1:
            return entry["cell"]
    return None


def _p99_open(cell: dict) -> float:
    value = cell.get("p99_all_ms")
    return math.inf if value is None or (cell.get("errors") and value is None) else value


def loggedin_targets(results: dict) -> list[tuple[str, str, bool | None]]:
    """Issue 18: what logged-in students get."""
    rows: list[tuple[str, str, bool | None]] = []
    for name, title, limit in LOGGEDIN_PAGES:
        cell = _cell(results, "a", "ours", name)
        if cell is None or (name == "detail_student" and _cell(results, "a", "ours", "li_home") is None):
            continue
        nocache = _cell(results, "a", "ours_nocache", name)
        base = _cell(results, "a", "base50", name)
        notes = [f"{label}: {other['cpu_ms_per_req']:.2f} ms" for label, other in
                 (("no page cache", nocache), ("baseline 50", base)) if other and other["cpu_ms_per_req"]]
        cpu = cell["cpu_ms_per_req"]
        rows.append((f"logged-in {title.split(' `')[0].lower()} ≤ {limit:.1f} ms CPU/request",
                     f"{cpu:.2f} ms" + (f" ({'; '.join(notes)})" if notes else ""),
                     cpu is not None and cpu <= limit))
    ours, base50, base200 = _ours_and_baselines(results, "a", "li_mix_c500")
    rows += _throughput_rows("logged-in mix c=500", ours, ((base50, 4, "baseline-50"), (base200, 3, "baseline-200")))
    if ours and base50 and base200:
        rows.append(("logged-in mix c=500: lower p99 than both baselines",
                     f"{_ms(ours['p99_ms'])} vs {_ms(base50['p99_ms'])} / {_ms(base200['p99_ms'])}",
                     ours["p99_ms"] < min(base50["p99_ms"], base200["p99_ms"])))
    cells = [cell for cell in (_cell(results, "a", "ours", f"li_mix_c{count}")
                               for count in results.get("plan", {}).get("concurrency", [])) if cell]
    if cells:
        threads = max(cell["peak_threads"] for cell in cells)
        rss = max(cell["peak_rss_per_process_mb"] for cell in cells)
        errors = sum(cell["errors"] for cell in cells)
        rows.append(("logged-in mix, every c: ≤ 4 threads", str(threads), threads <= 4))
        rows.append(("logged-in mix, every c: ≤ 100 MB RSS per worker", f"{rss:.0f} MB", rss <= 100))
        rows.append(("logged-in mix, every c: zero errors", str(errors), errors == 0))
    ours_b, base50_b, base200_b = _ours_and_baselines(results, "b", "li_mix_c1000")
    rows += _throughput_rows("(b) logged-in mix c=1000", ours_b,
                             ((base50_b, 5, "baseline-50"), (base200_b, 2, "baseline-200")))
    name = _open_loop_at_base50(results, "li_")
    ours_open = _cell(results, "b", "ours", name) if name else None
    base_open = _cell(results, "b", "base50", name) if name else None
    if ours_open and base_open:
        rate = next(entry["rate"] for entry in results["b"]["li_open_loop"] if entry["cell"] == name)
        rows.append((f"(b) logged-in open loop at 80% of baseline-50's capacity ({rate:.0f}/s): p99 below its",
                     f"{_ms(_p99_open(ours_open))} vs {_ms(_p99_open(base_open))}",
                     _p99_open(ours_open) < _p99_open(base_open)))
    two = _cell(results, "a", "ours_2w", "li_mix_c500")
    if two and ours:
        rows.append(("two workers (logged-in mix c=500): req/s against one worker (informative)",
                     f"{two['rps'] / ours['rps']:.2f}× of 2×; CPU/request {_num(two['cpu_ms_per_req'], 2)} ms "
                     f"vs {_num(ours['cpu_ms_per_req'], 2)} ms", None))
    return rows


def loggedin_section(results: dict) -> list[str]:
    """(a)'s logged-in cells (issue 18): single pages, the logged-in mix, two workers."""
    plan = results.get("plan", {})
    if not any(_cell(results, "a", "ours", name) for name in ("li_home", "li_mix_c50")):
        return []
    out = ["", "## (a) Logged-in students (issue 18), straight to PostgreSQL", "",
           "Every request carries a student's session cookie and the CSRF cookie a browser keeps "
           "(`csrftoken=<secret>`, sent back as is, as a browser does: no new CSRF secret per request), so no "
           "stored page can answer and every page is rendered for its student. The personal feed is fetched as "
           "a calendar app does, with its token only. POSTs carry the CSRF pair (cookie and form field)."]
    singles = (*LOGGEDIN_SINGLE, "base50")
    for name, title, _limit in LOGGEDIN_PAGES:
        if _cell(results, "a", "ours", name) is None:
            continue
        out += ["", f"### Logged-in: {title} alone, c=50", ""] + _table(results, "a", name, servers=singles)
        written = [f"{LABELS[key]} {cell['requests']:,} POSTs, {cell['written']['registrations']:,} "
                   f"registrations ({cell['written']['confirmed']:,} confirmed), {cell['written']['outbox']:,} "
                   "outbox rows" for key in singles if (cell := _cell(results, "a", key, name)) and "written" in cell]
        if written:
            out += ["", "Written during the cell: " + "; ".join(written) + " (the baseline writes no outbox row)."]
    weights = ", ".join(f"{name} {weight}%" for name, weight in results.get("loggedin_mix", []))
    if weights:
        out += ["", f"The logged-in mix (bench/mix.py `LOGGEDIN_MIX`): {weights}. Registrations go to events "
                "still open with seats free; leaves to random events (mostly answered \"not registered\": a "
                "redirect and a message)."]
    for count in plan.get("concurrency", []):
        if _cell(results, "a", "ours", f"li_mix_c{count}"):
            out += ["", f"### The logged-in mix at c={count}", ""] + _table(results, "a", f"li_mix_c{count}")
    two = _cell(results, "a", "ours_2w", "li_mix_c500")
    one = _cell(results, "a", "ours", "li_mix_c500")
    if two:
        processes = results["a"]["ours_2w"].get("processes")
        out += ["", "### Two workers (`uvicorn --workers 2`), the logged-in mix at c=500", "",
                f"CPU, threads and RSS summed over uvicorn's parent, its workers and multiprocessing's resource "
                f"tracker ({processes} processes); each "
                "worker has its own pool (10) and page store. wrk and PostgreSQL share the same two cores.", ""]
        out += _table(results, "a", "li_mix_c500", servers=("ours", "ours_2w"))[:4]
        if one and one["rps"]:
            out.append(f"\nTwo workers: **{two['rps'] / one['rps']:.2f}× of 2×** the req/s of one worker; "
                       f"CPU/request {_num(two['cpu_ms_per_req'], 2)} ms against {_num(one['cpu_ms_per_req'], 2)} ms.")
    return out


def _smoke_table(a: dict, kinds: list[str], names: list[str]) -> list[str]:
    lines = ["| server | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
    for key, value in a.items():
        answers = {kind: answer if isinstance(answer, dict) else {"status": answer, "bytes": 0}
                   for kind, answer in value.get("smoke", {}).items()}
        if not any(name in answers for name in names):
            continue
        lines.append(f"| {LABELS[key]} | " + " | ".join(
            f"{answers[name]['status']}, {answers[name]['bytes']:,} B" if name in answers else "–"
            for name in names) + " |")
    return lines


def markdown(results: dict, name: str = "latest") -> str:
    """The report of ``results``, written as ``<name>.md`` beside ``<name>.json`` and ``<name>.png``."""
    m = results.get("machine", {})
    plan = results.get("plan", {})
    out = ["# Benchmark: ours (async) against the thread-per-request baseline", ""]
    quick = ("**Quick smoke run** (a few seconds per cell: figures are indicative only). "
             if results.get("quick") else "")
    load_end = ", ".join(f"{x:.2f}" for x in results.get("load_average_at_end", []))
    out.append(f"{quick}Run on {m.get('date', '?')}, {results.get('seconds', '?')} s in all. Generated by `make bench` "
               f"(bench/run.py); raw figures in {name}.json, plot in {name}.png. How to read and caveats: "
               "bench/README.md.")
    out += ["", "## Machine", "", "| | |", "|---|---|"]
    out += [f"| cores (`nproc`) | {m.get('nproc')} |", f"| CPU | {m.get('cpu_model')} |",
            f"| memory | {m.get('memory_gib')} GiB |", f"| kernel | {m.get('kernel')} |",
            f"| PostgreSQL | {m.get('postgresql')} (max_connections {m.get('max_connections')}, "
            f"{m.get('connections_in_use_at_start')} in use by others at start) |",
            f"| PostgreSQL used | {results.get('postgres', '?')} |",
            f"| code measured | {results.get('source', {}).get('commit', '?')[:12]} "
            f"({results.get('source', {}).get('how', '?')}"
            + (f"; uncommitted changes in {', '.join(results['source']['changed'])}"
               if results.get("source", {}).get("changed") else "") + ") |",
            f"| Python | {m.get('python')} |",
            f"| load generator | {m.get('wrk')} (`-t2`), bench/openloop.py, bench/rush.py |",
            f"| load average (1, 5, 15 min) at start / end | "
            f"{', '.join(f'{x:.2f}' for x in m.get('load_average_at_start', []))} / {load_end or '–'} |",
            "| versions | " + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()) + " |"]
    dataset = results.get("dataset", {})
    weights = ", ".join(f"{name} {weight}%" for name, weight in results.get("mix", []))
    out += ["", f"Data set (bench/dataset.py): {_num(dataset.get('events'))} events, "
            f"{_num(dataset.get('students'))} students, {_num(dataset.get('registrations'))} registrations, "
            f"{_num(dataset.get('sessions'))} sessions; built in {dataset.get('seconds')} s. Each measured cell "
            f"starts from the same data (rows written by the previous cell are deleted). Mix: {weights}."]
    out += ["", "Servers, one process each, all under `PYTHONOPTIMIZE=2` (python -OO, as the README serves "
            "production): **ours** = `uvicorn hyperion.asgi:application --loop uvloop --http "
            "hyperion.httpprotocol:HyperionHttpProtocol --ws none --no-access-log --limit-concurrency 4000`; "
            "**ours, no page cache** = the same with PAGE_CACHE_SECONDS=0 (no stored pages or fragments); "
            "**baseline** = bench/baseline (Django WSGI, "
            "stock sync middleware, sync SQLAlchemy + psycopg, same queries, presenters and Jinja2 templates, "
            "no page cache) under "
            "`gunicorn --workers 1 --worker-class gthread --threads 50` (or 200). Threads and RSS of the baseline "
            "add up gunicorn's master and worker; CPU/request is the server processes' CPU time (all threads) "
            "over completed requests."]
    rows = targets(results)
    if rows:
        out += ["", "## Targets of the issue", "", "| target | measured | met |", "|---|---|---|"]
        out += [f"| {target} | {measured} | {'yes' if met else 'no' if met is not None else '–'} |"
                for target, measured, met in rows]
    a = results.get("a")
    if a:
        pools = ", ".join(f"{LABELS[key]} {value['pool']['pool_size']}+{value['pool']['max_overflow']}"
                          for key, value in a.items() if "pool" in value)
        out += ["", "## (a) Straight to PostgreSQL (loopback)", "",
                f"wrk closed loop, `-t2 --timeout 10s`, {plan.get('warm')} s warm-up then {plan.get('single')} s "
                f"(single pages) / {plan.get('mix')} s (mix) per cell. Pools (size+overflow): {pools}."]
        if _cell(results, "a", "ours", "floor"):
            out += ["", "### The floor: `/healthz` alone, c=50", "",
                    "No database, no template: what a request costs through the server, Django's handler and "
                    "the middleware (security headers, session, language, CSRF, messages) before any page "
                    "work. A page cannot cost less than this.", ""] + _table(results, "a", "floor")
        if _cell(results, "a", "ours", "home"):
            out += ["", "### Home page `/` alone, c=50", ""] + _table(results, "a", "home")
        if _cell(results, "a", "ours", "detail"):
            out += ["", "### Event page `/events/<random slug>/` alone, c=50, visitors without a session", ""]
            out += _table(results, "a", "detail")
        if _cell(results, "a", "ours", "detail_student"):
            out += ["", "### Event page `/events/<random slug>/` alone, c=50, logged-in students", "",
                    "The same pages with a student's session: each carries the student's own registration, so "
                    "no stored page can answer it (it is rendered for the student from the session, the event and "
                    "their registrations kept in memory, or one query for what is missing).", ""]
            out += _table(results, "a", "detail_student")
        for count in plan.get("concurrency", []):
            if _cell(results, "a", "ours", f"mix_c{count}"):
                out += ["", f"### The mix at c={count}", ""] + _table(results, "a", f"mix_c{count}")
        out += loggedin_section(results)
        kinds = [name for name, _weight in results.get("mix", [])]
        out += ["", "One request of each kind before the load, to check that both stacks answer the same pages "
                "(status, bytes), visitors' kinds:", ""] + _smoke_table(a, kinds, kinds)
        li_kinds = [name for name, _weight in results.get("loggedin_mix", [])]
        if li_kinds:
            out += ["", "Logged-in students' kinds (session and CSRF cookies):", ""]
            out += _smoke_table(a, li_kinds, [f"li_{kind}" for kind in li_kinds])
        for line in results.get("smoke_drift", []):
            out.append(f"\n**Warning: the baseline does not render what ours renders**: {line}.")
    b = results.get("b")
    if b:
        pools = ", ".join(f"{LABELS[key]} {value['pool']['pool_size']}+{value['pool']['max_overflow']}"
                          + (f" ({value['pool']['max_in_flight']} requests let into Django at once)"
                             if "max_in_flight" in value["pool"] else "")
                          for key, value in b.items() if isinstance(value, dict) and "pool" in value)
        out += ["", "## (b) Every database round trip +100 ms (latency proxy), the mix at c=1000", "",
                "bench/latency_proxy.py sits between the server and PostgreSQL on loopback and delays every chunk "
                "PostgreSQL sends back by 100 ms (so each query, each BEGIN and COMMIT and each connection set-up "
                f"waits ~100 ms more). Pools kept within max_connections (size+overflow): {pools}."]
        if _cell(results, "b", "ours", "mix_c1000"):
            out += ["", f"### Closed loop (wrk, c=1000, {plan.get('latency_closed')} s after "
                    f"{plan.get('latency_warm')} s warm-up)", ""] + _table(results, "b", "mix_c1000")
        for entry in b.get("open_loop", []):
            name = entry["cell"]
            out += ["", f"### Open loop at {entry['rate']:.0f} requests/s ({entry['why']}), "
                    f"{plan.get('open_loop')} s", "",
                    "bench/openloop.py: requests leave on schedule whatever the server answers; latency from the "
                    "scheduled time; p50/p99 over every scheduled request, a failed one (timeout 10 s, refused, "
                    "non-2xx/3xx) counting as slower than any answer; req/s = successful answers per second of "
                    "sending (at most the offered rate).", ""]
            out += _table(results, "b", name)
        if _cell(results, "b", "ours", "li_mix_c1000"):
            out += ["", "### The logged-in mix, closed loop (wrk, c=1000, every round trip +100 ms)", "",
                    "Every request with a student's session and CSRF cookies (bench/mix.py `LOGGEDIN_MIX`).", ""]
            out += _table(results, "b", "li_mix_c1000")
        for entry in b.get("li_open_loop", []):
            out += ["", f"### The logged-in mix, open loop at {entry['rate']:.0f} requests/s ({entry['why']}), "
                    f"{plan.get('open_loop')} s", ""] + _table(results, "b", entry["cell"])
    c = results.get("c", {}).get("ours")
    if c:
        pool = results.get("a", {}).get("ours", {}).get("pool")
        pool_text = f" Pool {pool['pool_size']}+{pool['max_overflow']}." if pool else ""
        out += ["", "## (c) Registration rush (ours only: the baseline has no live seat counter)", "",
                f"{c['streams']} anonymous visitors keep `GET /events/rush/seats/` (server-sent events) open, then "
                f"{c['students']} distinct logged-in students POST a registration for the 100-seat event, open loop, "
                "spread evenly over 1 s, each on a new connection with its own session and CSRF pair "
                f"(`confirm_overlap=yes`).{pool_text}", "", "| check | result |", "|---|---|"]
        out += [
            f"| streams open before the rush | {c['streams_ready']}/{c['streams']} in {c['streams_ready_s']} s |",
            f"| registrations / confirmed / waitlisted | {c['registrations']} / {c['confirmed']} / {c['waitlisted']} |",
            f"| exactly 100 confirmed | {'yes' if c['exactly_100_confirmed'] else 'no'} |",
            f"| errors (non-302, socket, timeout) | {c['errors']} {' '.join(c['error_kinds'])} |",
            f"| waitlist in lock order (queued_at strictly increasing, ids in the same order, confirmed before "
            f"waitlisted) | {'yes' if c['waitlist_in_lock_order'] else 'no'} |",
            f"| order the server answered vs lock order | {c['answer_order_concordance']} of pairs agree, "
            f"{c['answer_order_inversions']} inverted, max displacement {c['answer_order_max_displacement']} |",
            f"| lock order vs send order | {c['send_order_inversions']:,} of {c['answer_order_pairs']:,} pairs "
            f"inverted ({100 * c['send_order_inversions'] / max(c['answer_order_pairs'], 1):.0f}%: the order in "
            "which registrations reached the lock is not the order in which they were sent) |",
            f"| all answered after | {c['rush_seconds']} s from the first POST ({_num(c['rps'])} registrations/s) |",
            f"| POST latency p50 / p99 | {_ms(c['p50_ms'])} / {_ms(c['p99_ms'])} |",
            f"| server CPU per registration (streams' work included) | {_num(c['cpu_ms_per_req'], 2)} ms |",
            f"| server CPU per registration while the POSTs are answered | "
            f"{_num(c.get('posts_cpu_ms_per_post'), 2)} ms |",
            f"| peak threads / RSS | {c['peak_threads']} / {_num(c['peak_rss_mb'])} MB |",
            f"| streams that saw full=true | {c['streams_full']}/{c['streams']}, within 1 s: "
            f"{c['streams_full_within_1s']} |",
            f"| delay after the 100th confirmation p50 / p99 / max | {_ms(c['full_delay_p50_ms'])} / "
            f"{_ms(c['full_delay_p99_ms'])} / {_ms(c['full_delay_max_ms'])} |",
            f"| seat events per stream (mean), stream errors | {c['stream_events_mean']}, {c['stream_errors']} |",
        ]
        out += ["", "The 100th confirmation's time is its `queued_at`, taken under the row lock a little before its "
                "commit: the delays are slightly overstated, never understated."]
    lot = results.get("c", {}).get("ours_lottery")
    if lot:
        out += ["", "### (c) The same rush, the event opening by lottery (issue 19)", "",
                f"The same {lot['students']} students and {lot['streams']} open streams; the event's first 10 minutes "
                "are a lottery window, so each POST is an entry (one INSERT, no lock). Once every POST is answered, "
                "`manage.py drawlotteries rush --now` closes the window and draws; the streams hear \"full\" from "
                "the draw's news.", "", "| check | result |", "|---|---|",
                f"| entries answered: errors | {lot['errors']} {' '.join(lot['error_kinds'])} |",
                f"| all answered after | {lot['rush_seconds']} s from the first POST |",
                f"| POST (entry) latency p50 / p99 | {_ms(lot['p50_ms'])} / {_ms(lot['p99_ms'])} |",
                f"| server CPU per ask (streams' work included) | {_num(lot['cpu_ms_per_req'], 2)} ms |",
                f"| server CPU per ask while the POSTs are answered | {_num(lot.get('posts_cpu_ms_per_post'), 2)} ms |",
                f"| the draw: confirmed / waitlisted / entries left | {lot['confirmed']} / {lot['waitlisted']} / "
                f"{lot['entries_left']} ({lot['draw_seconds']} s for the command, start-up included) |",
                f"| the order is the one its recorded seed gives | {'yes' if lot['drawn_order_matches'] else 'no'} |",
                f"| streams told after the draw p50 / p99 / max | {_ms(lot['result_delay_p50_ms'])} / "
                f"{_ms(lot['result_delay_p99_ms'])} / {_ms(lot['result_delay_max_ms'])} "
                f"({lot['streams_told_within_2s']}/{lot['streams']} within 2 s) |",
                f"| peak threads / RSS | {lot['peak_threads']} / {_num(lot['peak_rss_mb'])} MB |"]
        out += ["", "The draw's time is `events.lottery_drawn_at`, taken under the event's lock before the draw's "
                "writes and commit: the delays are overstated by the draw's own transaction, never understated."]
    return "\n".join(out) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plan = results.get("plan", {})
    counts = plan.get("concurrency", [])
    figure, grid = plt.subplots(2, 2, figsize=(13, 9))
    axes = [grid[0][0], grid[0][1], grid[1][1], grid[1][0]]
    styles = {"ours": "o-", "ours_nocache": "o--", "base50": "s-", "base200": "s--"}
    for server in SERVERS:
        xs, rps, p99, cpu = [], [], [], []
        for count in counts:
            cell = _cell(results, "a", server, f"mix_c{count}")
            if cell:
                xs.append(count)
                rps.append(cell["rps"])
                p99.append(cell["p99_ms"])
                cpu.append(cell["cpu_ms_per_req"])
        if xs:
            axes[0].plot(xs, rps, styles[server], label=LABELS[server])
            axes[1].plot(xs, p99, styles[server], label=LABELS[server])
            axes[3].plot(xs, cpu, styles[server], label=LABELS[server])
    axes[0].set(title="(a) the mix: throughput", xlabel="concurrent connections (wrk)", ylabel="requests/s")
    axes[1].set(title="(a) the mix: p99 latency (wrk, timeout 10 s)", xlabel="concurrent connections (wrk)",
                ylabel="ms", yscale="log")
    axes[3].set(title="(a) the mix: server CPU per request", xlabel="concurrent connections (wrk)",
                ylabel="ms of CPU per request")
    axes[0].set_ylim(bottom=0)
    axes[3].set_ylim(bottom=0)
    for axis in (axes[0], axes[1], axes[3]):
        axis.set_xticks(counts)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
    labels, closed, p99_open = [], [], []
    for server in SERVERS:
        cell = _cell(results, "b", server, "mix_c1000")
        if cell:
            labels.append(LABELS[server].replace(" (uvicorn, async)", "").replace("baseline ", "base "))
            closed.append(cell["rps"])
            high = _cell(results, "b", server, "open_high") or _cell(results, "b", server, "open_low")
            p99_open.append(high.get("p99_all_ms") if high else None)
    if labels:
        bars = axes[2].bar(labels, closed, color=["#1f77b4", "#6baed6", "#d62728", "#ff9896"][:len(labels)])
        axes[2].set(title="(b) +100 ms per DB round trip, c=1000: throughput", ylabel="requests/s")
        for bar, p99 in zip(bars, p99_open, strict=True):
            text = "open-loop p99: " + ("> 10 s" if p99 is None or not math.isfinite(p99) else f"{p99 / 1000:.2f} s")
            axes[2].annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                             va="bottom", fontsize=7)
        axes[2].tick_params(axis="x", labelsize=8)
    figure.suptitle(f"Hyperion Events benchmark, {results.get('machine', {}).get('date', '')}"
                    f"{' (quick run)' if results.get('quick') else ''}: shared 2-core machine, compare ratios")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results: dict, directory: Path, name: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.json", directory / f"{name}.md", directory / f"{name}.png"]
    paths[0].write_text(json.dumps(_clean(results), indent=1, default=str) + "\n")
    paths[1].write_text(markdown(results, name))
    plot(results, paths[2])
    return paths


if __name__ == "__main__":  # python -m bench.report [results.json]: rewrite the .md and .png from the .json
    import sys

    source = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest.json")
    stem = source.with_suffix("")
    data = json.loads(source.read_text())
    stem.with_suffix(".md").write_text(markdown(data, stem.name))
    plot(data, stem.with_suffix(".png"))
