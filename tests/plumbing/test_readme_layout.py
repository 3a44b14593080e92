"""The README's "Layout" section names every module of hyperion/ and events/, each under its package.

The section's tree (its first code block) is read by its indentation: a line that starts before the description
column (where the text after the tree's first name starts) is an entry, a folder (``name/``) or a module
(``name.py``) followed by what it owns; a line that starts at that column or further continues the description
above it. A module added without its line, or a line left for a module moved or removed, fails here, named.
Left out: ``__init__.py`` files, migrations, and the management commands (one module each, named as a group
by ``commands/``). The section is found by its heading, not by line numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

HEADING = "## Layout"
PACKAGES = ("hyperion", "events")
COMMANDS = "events/management/commands/"
_ENTRY = re.compile(r"(?P<indent> *)(?P<name>[\w.-]+(?:/|\.py))(?:\s+(?P<owns>\S.*))?$")


def layout_section(readme: str) -> str:
    """The text under the heading, up to the next heading of the same level or above."""
    lines = readme.splitlines()
    starts = [number for number, line in enumerate(lines) if line.strip() == HEADING]
    assert starts, f"README.md has no {HEADING!r} heading"
    section = []
    for line in lines[starts[0] + 1:]:
        if re.match(r"#{1,2} ", line):
            break
        section.append(line)
    return "\n".join(section)


def layout_tree(section: str) -> list[tuple[str, str]]:
    """The tree's entries as (path from the repository's root, what the line says it owns)."""
    block = re.search(r"^```[^\n]*\n(?P<tree>.*?)^```", section, re.M | re.S)
    assert block, f"README.md's {HEADING!r} section has no code block holding the tree"
    lines = [line for line in block["tree"].splitlines() if line.strip()]
    first = _ENTRY.fullmatch(lines[0])
    assert first and first["owns"], f"the tree's first line is not an entry with its description: {lines[0]!r}"
    column = lines[0].index(first["owns"])  # where descriptions start: continuation lines start there or further
    entries: list[tuple[str, str]] = []
    folders: list[tuple[int, str]] = []  # the enclosing folders, with their indentation
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        if indent >= column:
            continue
        entry = _ENTRY.fullmatch(line)
        assert entry, f"a line of the tree is neither an entry nor a continued description: {line!r}"
        while folders and folders[-1][0] >= indent:
            folders.pop()
        path = "".join(folder for _indent, folder in folders) + entry["name"]
        entries.append((path, entry["owns"] or ""))
        if path.endswith("/"):
            folders.append((indent, entry["name"]))
    return entries


def modules(root: Path) -> set[str]:
    """Every module of the packages the layout must name."""
    found = set()
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            relative = path.relative_to(root).as_posix()
            if path.name == "__init__.py" or "migrations" in path.parts or relative.startswith(COMMANDS):
                continue
            found.add(relative)
    return found


def layout_problems(readme: str, root: Path) -> list[str]:
    entries = layout_tree(layout_section(readme))
    named = {path for path, _owns in entries if path.endswith(".py")}
    expected = modules(root)
    problems = []
    missing = sorted(expected - named)
    if missing:
        problems.append(f"not named in README.md's layout section (add a line under its package): {', '.join(missing)}")
    stale = sorted(path for path in named - expected if path.startswith(tuple(f"{p}/" for p in PACKAGES)))
    if stale:
        problems.append(f"named in README.md's layout section but not a module there: {', '.join(stale)}")
    silent = sorted(path for path, owns in entries if path.endswith(".py") and not owns)
    if silent:
        problems.append(f"named in README.md's layout section without what it owns: {', '.join(silent)}")
    if (root / COMMANDS).is_dir() and COMMANDS not in {path for path, _owns in entries}:
        problems.append(f"README.md's layout section does not name {COMMANDS} (the management commands)")
    return problems


def test_the_readme_layout_names_every_module_of_hyperion_and_events():
    problems = layout_problems((ROOT / "README.md").read_text(encoding="utf-8"), ROOT)
    assert not problems, "\n".join(problems)


def test_the_layout_check_names_a_missing_module_and_a_stale_line(tmp_path):
    for module in ("hyperion/app.py", "hyperion/bodies.py", "events/rules/seats.py", "events/rules/__init__.py",
                   "events/management/commands/migrate.py"):
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).write_text("")
    readme = "\n".join([
        "# Site", "", HEADING, "", "Some text.", "", "```",
        "hyperion/       the plumbing",
        "  app.py        the ASGI application, whose description",
        "                goes on: bodies.py is only named here",
        "events/",
        "  rules/        the rules",
        "    seats.py    seats",
        "    gone.py     a module removed since",
        "  management/",
        "    commands/   the commands",
        "```", "", "## How a request flows", "", "```", "hyperion/bodies.py  the body", "```", ""])
    problems = layout_problems(readme, tmp_path)
    assert problems == [
        "not named in README.md's layout section (add a line under its package): hyperion/bodies.py",
        "named in README.md's layout section but not a module there: events/rules/gone.py",
    ]
