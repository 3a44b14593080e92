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


# Test data through the services (tests/factories.py); a raw write only where it says why (the rule's docstring).

RAW_EXEMPT = ("support.py", "factories.py", "test_suite_rules.py", "plumbing/test_models.py")
RAW_EXEMPT_FOLDERS = ("fuzz/",)
# The raw inserts of tests/support.py, and registration_at of tests/staff/pages.py (a registration in a chosen
# state): calling one is a raw write.
RAW_HELPERS = frozenset({"association_create", "user_create", "event_create", "registration_create_raw",
                         "registration_at"})
RAW_MODULES = ("support", "pages")
RAW_MODULE_PATHS = ("tests.support", "tests.staff.pages")
RAW_MARK = re.compile(r"#\s*raw:")
SQL_WRITE = re.compile(r"\s*(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.IGNORECASE)
_STATEMENTS = ("insert", "update", "delete")
_ABOVE = 3  # how many lines above a write (its statement, its block, a helper's def) its comment may stand


def _imported(tree: ast.Module, modules, names) -> set[str]:
    """The local names (aliases included) under which a module imports ``names`` from one of ``modules``."""
    return {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and modules(node.module or "") for alias in node.names if alias.name in names}


def _leading_text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _leading_text(node.values[0])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _leading_text(node.left)
    return None


def _sqlalchemy_modules(tree: ast.Module) -> set[str]:
    """The local names of ``import sqlalchemy`` (``import sqlalchemy as sa``)."""
    return {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
            for alias in node.names if alias.name == "sqlalchemy"}


def _raw_write(call: ast.Call, statements: set[str], helpers: set[str]) -> bool:
    function = call.func
    if isinstance(function, ast.Name) and function.id in statements | helpers:
        return True  # insert(User), update(Event), delete(...); registration_at(...) imported by name
    if isinstance(function, ast.Attribute):
        if function.attr in _STATEMENTS and (not call.args and not call.keywords or isinstance(
                function.value, ast.Name) and function.value.id in statements):
            # User.__table__.update(): a table's statement (dict.update and list.insert take arguments);
            # sa.insert(User) after ``import sqlalchemy as sa``
            return True
        if function.attr in RAW_HELPERS and isinstance(function.value, ast.Name) and function.value.id in RAW_MODULES:
            return True  # support.event_create(...), pages.registration_at(...)
    text = _leading_text(call.args[0]) if call.args else None
    return text is not None and SQL_WRITE.match(text) is not None  # text("UPDATE ..."), execute("INSERT ...")


def _head(node: ast.AST) -> range:
    """The lines that may carry a node's comment: its own (a compound statement's head only) and those above."""
    end = node.end_lineno or node.lineno
    body = getattr(node, "body", None)
    if isinstance(node, ast.stmt) and isinstance(body, list) and body:
        end = body[0].lineno - 1
    first = min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", []))])
    return range(first - _ABOVE, end + 1)


def unmarked_raw_writes(source: str, relative: str) -> list[str]:
    """file:line of each raw write in ``source`` (the file tests/``relative``) that does not say why it is raw."""
    if relative in RAW_EXEMPT or relative.startswith(RAW_EXEMPT_FOLDERS):
        return []
    tree = ast.parse(source, filename=relative)
    statements = _imported(tree, lambda module: module.startswith("sqlalchemy"), _STATEMENTS) | \
        _sqlalchemy_modules(tree)
    helpers = _imported(tree, lambda module: module in RAW_MODULE_PATHS, RAW_HELPERS)
    marks = {line for line, comment in _comments(source).items() if RAW_MARK.search(comment)}
    lines = source.splitlines()
    refused = []

    def says(where) -> bool:
        return any(line in marks for line in where)

    def visit(node: ast.AST, covered: bool, heads: tuple[range, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) and not child.name.startswith("test_"):
                # A helper that says once why its writes are raw: in its docstring, its body or just above it.
                whole = range(_head(child).start, (child.end_lineno or child.lineno) + 1)
                visit(child, covered or "raw:" in (ast.get_docstring(child) or "") or says(whole), ())
                continue
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, covered, ())  # a test: each of its writes says why, near it
                continue
            if isinstance(child, ast.Call) and not covered and _raw_write(child, statements, helpers) \
                    and not says(_head(child)) and not any(says(head) for head in heads):
                refused.append(f"tests/{relative}:{child.lineno}: {lines[child.lineno - 1].strip()}")
            # Where a write's comment may stand: above its statement, or on the head of the with block (one
            # transaction) or the loop it is in.
            block = isinstance(child, ast.With | ast.AsyncWith | ast.For | ast.AsyncFor) or \
                isinstance(child, ast.stmt) and not any(hasattr(child, field) for field in ("body", "cases"))
            visit(child, covered, (*heads, _head(child)) if block else heads)

    visit(tree, False, ())
    return refused


def test_every_raw_write_says_why():
    """A test builds its data the way the site does: through the services, mostly by tests/factories.py. A raw
    write (past the services) only where a test needs a state they cannot make, or rows without the audit
    entries and e-mails they add, and it says so: a comment ``# raw: <why>`` on one of its lines or within the
    3 lines above it, above its statement, on the head of its ``with`` block or loop (within 3 lines), or once
    in a helper function (not a test) whose docstring or body has ``raw:``.

    A raw write is SQLAlchemy's ``insert(...)``, ``update(...)``, ``delete(...)`` or ``Table.update()``, a
    string passed to a call that starts ``INSERT INTO``, ``UPDATE x SET`` or ``DELETE FROM`` (``text(...)``,
    asyncpg's ``execute``), or a call of a raw helper: tests/support.py's inserts and tests/staff/pages.py's
    ``registration_at`` (``RAW_HELPERS``).

    Not checked: tests/support.py and tests/factories.py (the helpers themselves, each saying what it is for),
    tests/fuzz/ (a fuzzer's own seed data), this file (its samples), and tests/plumbing/test_models.py, which
    tests the schema itself: every one of its writes goes past the services on purpose, since what it tests is
    what the database refuses or keeps by itself (its module says so once)."""
    refused = [where for path in sorted(TESTS.rglob("*.py"))
               for where in unmarked_raw_writes(path.read_text(), path.relative_to(TESTS).as_posix())]
    assert not refused, (
        "These writes go past the services without saying why. Build the data with tests/factories.py (or a "
        "service); where the services cannot make the state, or the test must not get their audit entries and "
        "e-mails, put a comment `# raw: <why>` on the write or within the 3 lines above it (see "
        "test_every_raw_write_says_why):\n" + "\n".join(refused))


def test_the_raw_write_rule_sees_what_it_should():
    """The check itself: unmarked writes are refused, marked ones, factories and look-alikes are not."""
    sample = (
        "from sqlalchemy import insert, text, update as sql_update\n"      # 1
        "import sqlalchemy as sa; from events.models import Event, User\n"  # 2
        "from tests import factories, support\n"                           # 3
        "from tests.staff.pages import registration_at\n"                  # 4
        "\n"                                                               # 5
        "async def test_something(session, fields):\n"                     # 6
        "    await session.execute(insert(User), {'email': 'a@b.c'})\n"    # 7: refused
        "    # raw: a state no service makes\n"                             # 8
        "    await session.execute(insert(User), {'email': 'b@b.c'})\n"    # 9
        "    await support.event_create(association_id=1)\n"              # 10: covered by line 8
        "    await support.user_create()\n"                                # 11: 3 lines below: still covered
        "    await support.registration_create_raw(event_id=1, user_id=2)\n"  # 12: 4 lines below: refused
        "    await session.execute(text('UPDATE events SET capacity = 1'))\n"  # 13: refused
        "    await session.execute(Event.__table__.update().values(capacity=3))\n"  # 14: refused
        "    await registration_at(1, 2, 'offered', None)\n"               # 15: refused
        "    fields.update(title='x')\n"                                   # 16: a dict
        "    await factories.event(association_id=1)\n"                   # 17: the services
        "    await account_services.user_create(session, email='x')\n"    # 18: a service of that name
        "    assert 'INSERT INTO registrations' in fields\n"              # 19: not a call's argument
        "    await session.execute(sql_update(Event).values(capacity=2))  # raw: time passes\n"  # 20
        "    async with session.begin():  # raw: back-dated, as time passing would\n"  # 21
        "        await session.execute(sql_update(Event).values(starts_at=None))\n"  # 22
        "        await session.execute(sql_update(User).values(promo=1))\n"  # 23
        "        await session.execute(sql_update(User).values(promo=2))\n"  # 24
        "        await session.execute(sql_update(User).values(promo=3))\n"  # 25: the block's comment
        "\n"                                                               # 26
        "async def seed(session):\n"                                       # 27
        "    # raw: one transaction, without the services' audit entries\n"  # 28
        "    async def add(model, **values):\n"                            # 29
        "        return await session.execute(insert(model), values)\n"    # 30
        "    for _ in range(5):\n"                                         # 31
        "        await add(User)\n"                                        # 32
        "    await session.execute(insert(Event), {})\n"                   # 33: the helper said it once
        "\n"                                                               # 34
        "async def unsaid(session):\n"                                     # 35
        "    await session.execute(insert(Event), {})\n"                   # 36: refused
        "    await session.execute(sa.delete(Event))\n"                    # 37: refused
    )
    assert unmarked_raw_writes(sample, "test_probe.py") == [
        "tests/test_probe.py:7: await session.execute(insert(User), {'email': 'a@b.c'})",
        "tests/test_probe.py:12: await support.registration_create_raw(event_id=1, user_id=2)",
        "tests/test_probe.py:13: await session.execute(text('UPDATE events SET capacity = 1'))",
        "tests/test_probe.py:14: await session.execute(Event.__table__.update().values(capacity=3))",
        "tests/test_probe.py:15: await registration_at(1, 2, 'offered', None)",
        "tests/test_probe.py:36: await session.execute(insert(Event), {})",
        "tests/test_probe.py:37: await session.execute(sa.delete(Event))",
    ]
    assert unmarked_raw_writes(sample, "plumbing/test_models.py") == []
    assert unmarked_raw_writes(sample, "fuzz/test_probe.py") == []


def test_the_raw_helpers_are_all_known():
    """Each function of tests/support.py that inserts rows is one of RAW_HELPERS (its callers must say why),
    and so is tests/staff/pages.py's registration_at."""
    inserting = set()
    for relative in ("support.py", "staff/pages.py"):
        tree = ast.parse((TESTS / relative).read_text())
        inserting |= {function.name for function in tree.body
                      if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
                      and any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                              and node.func.id == "insert" for node in ast.walk(function))}
    assert inserting - {"team"} <= RAW_HELPERS, "add to RAW_HELPERS: " + ", ".join(sorted(inserting - RAW_HELPERS))
    assert "registration_at" in inserting and "event_create" in inserting
