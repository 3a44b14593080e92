"""The import contracts (pyproject.toml, run by lint-imports in make lint and make test) break when a module
reaches past them: a contract that cannot fail would guard nothing. And scripts/import_graph.py, which draws
the topics' imports, names every topic and any import running back up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PROTECTED = "The registration's internals"
TOPICS = ("views", "management", "ops", "staff", "registration", "notifications", "feeds", "accounts", "live",
          "catalog", "rules")


def run(command: list, tree: Path) -> subprocess.CompletedProcess[str]:
    # A wide terminal, so that lint-imports does not wrap a contract's name in its report.
    return subprocess.run(  # noqa: S603 - the venv's own interpreter and lint-imports
        command, cwd=tree, capture_output=True, text=True, env={**os.environ, "COLUMNS": "1000"}, timeout=120)


def copy_of_the_packages(tmp_path: Path) -> Path:
    for package in ("events", "hyperion"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/import_graph.py", tmp_path / "scripts")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_import(module: Path, line: str) -> None:
    with module.open("a", encoding="utf-8") as source:
        source.write(f"{line}  # noqa: E402,F401\n")


def test_another_topic_importing_the_registrations_lock_breaks_the_protected_contract(tmp_path):
    tree = copy_of_the_packages(tmp_path)
    # staff sits above registration, so the layers allow this import: only the protected contract refuses it.
    add_import(tree / "events/staff/people.py", "from events.registration import locks")
    result = run([LINT_IMPORTS, "--no-cache"], tree)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert PROTECTED in broken and "events.staff.people -> events.registration.locks" in broken, result.stdout


def test_the_import_graph_names_every_topic_and_nothing_running_back_up():
    result = run([sys.executable, "scripts/import_graph.py"], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    drawn = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")][:len(TOPICS)]
    assert drawn == list(TOPICS)
    assert result.stdout.rstrip().endswith("Imports running back up (a lower layer importing a higher one, per "
                                           "pyproject.toml's layers contracts):\n  none")


def test_the_import_graph_names_an_import_running_back_up(tmp_path):
    tree = copy_of_the_packages(tmp_path)
    add_import(tree / "events/rules/seats.py", "from events.catalog import search")
    result = run([sys.executable, "scripts/import_graph.py"], tree)
    assert result.returncode == 1
    assert "  rules          catalog\n" in result.stdout
    assert "events.rules.seats -> events.catalog.search   (events.rules is below events.catalog)" in result.stdout
