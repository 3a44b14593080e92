"""The suite's rule: a test waits on the event it needs, never on a sleep or the machine's speed (the suite
must pass on a loaded machine).

Every ``sleep(...)`` call under tests/ (``asyncio.sleep``, ``time.sleep``, any ``<something>.sleep`` or a bare
``sleep``) is refused, named file:line, unless

- its argument is the literal ``0`` (a yield to the event loop, not a wait); or
- it is the poll step of a polling helper with a deadline: ``until`` and ``until_sync`` in tests/support.py,
  which every test uses to wait for its event (``HELPERS``); or
- its line (any line of the call) carries a comment that says it is not a wait, with one of the markers:
  ``simulates`` (a fake view, server or client doing slow work, arrivals spread in time: the sleep *is* the
  scenario) or ``samples`` (a sampler's period: it measures while something else runs, and waits for
  nothing).

An argument that is not a literal (``sleep(delay)``) needs the same justification as a number.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

TESTS = Path(__file__).resolve().parent
MARKERS = ("simulates", "samples")
HELPERS = {("support.py", "until"), ("support.py", "until_sync")}


def _comments(source: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string
    return found


def _is_sleep(call: ast.Call) -> bool:
    function = call.func
    return (isinstance(function, ast.Attribute) and function.attr == "sleep") or \
        (isinstance(function, ast.Name) and function.id == "sleep")


def _yields_only(call: ast.Call) -> bool:
    argument = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg in ("delay", "seconds",
                                                                                                "secs")), None)
    return isinstance(argument, ast.Constant) and argument.value == 0


def sleeps_that_wait(source: str, relative: str) -> list[str]:
    """file:line of each sleep that the rule refuses in ``source``, the file tests/``relative``."""
    comments = _comments(source)
    lines = source.splitlines()
    refused = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call) and _is_sleep(child) and not _yields_only(child):
                span = range(child.lineno, (child.end_lineno or child.lineno) + 1)
                marked = any(marker in comments.get(line, "") for line in span for marker in MARKERS)
                if not marked and (relative, function) not in HELPERS:
                    refused.append(f"tests/{relative}:{child.lineno}: {lines[child.lineno - 1].strip()}")
            visit(child, function)

    visit(ast.parse(source, filename=relative), "")
    return refused


def test_no_test_waits_on_a_sleep():
    refused = [where for path in sorted(TESTS.rglob("*.py"))
               for where in sleeps_that_wait(path.read_text(), path.relative_to(TESTS).as_posix())]
    assert not refused, ("These sleeps wait on the time, not on an event: wait with tests.support.until(...) on "
                         "what the code exposes, or mark a sleep that simulates work (see this module's "
                         "docstring):\n" + "\n".join(refused))


def test_the_rule_sees_what_it_should():
    """The check itself: a wait is refused, a yield, a marked sleep and the helpers' poll step are not."""
    sample = (
        "import asyncio, time\n"
        "\n"
        "async def test_something(delay):\n"
        "    await asyncio.sleep(0)\n"
        "    await asyncio.sleep(0.5)\n"
        "    time.sleep(delay)\n"
        "    await asyncio.sleep(0.1)  # simulates a slow view\n"
        "    await asyncio.sleep(\n"
        "        0.1)  # samples a counter\n"
        "\n"
        "async def until(condition):\n"
        "    await asyncio.sleep(0.01)\n"
    )
    assert sleeps_that_wait(sample, "test_probe.py") == ["tests/test_probe.py:5: await asyncio.sleep(0.5)",
                                                         "tests/test_probe.py:6: time.sleep(delay)",
                                                         "tests/test_probe.py:12: await asyncio.sleep(0.01)"]
    assert sleeps_that_wait(sample, "support.py") == ["tests/support.py:5: await asyncio.sleep(0.5)",
                                                      "tests/support.py:6: time.sleep(delay)"]


def test_no_test_reads_or_ends_another_runs_database_sessions():
    """A second rule of a suite that runs beside others (CI and a developer's run share one PostgreSQL): a
    query on pg_stat_activity, which lists every database's sessions, keeps to this run's database. Two
    runs at once ended each other's fuzzed servers' connections ("terminating connection due to
    administrator command") while their queries named only the application."""
    unscoped = []
    for path in sorted(TESTS.rglob("*.py")):
        source = path.read_text()
        for match in re.finditer(r"FROM pg_stat_activity\b", source):
            statement = source[match.start():match.start() + 300]
            if "current_database()" not in statement:
                line = source.count("\n", 0, match.start()) + 1
                unscoped.append(f"tests/{path.relative_to(TESTS).as_posix()}:{line}")
    assert not unscoped, "add `datname = current_database()` to: " + ", ".join(unscoped)


def test_every_folder_of_tests_is_a_package():
    """The tests live by topic, one folder per package of the code (tests/catalog/ for events/catalog/...);
    each folder needs its __init__.py, or two test modules of the same name in two folders would collide
    when pytest imports them."""
    folders = {path.parent for path in TESTS.rglob("test_*.py")}
    missing = sorted(folder.relative_to(TESTS).as_posix() for folder in folders
                     if not (folder / "__init__.py").exists())
    assert not missing, "add an __init__.py to: " + ", ".join(missing)
