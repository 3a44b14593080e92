"""The import contracts (pyproject.toml, run by lint-imports in make lint and make test) break when a module
reaches past them: a contract that cannot fail would guard nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PROTECTED = "The registration's internals"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # A wide terminal, so that a contract's name is not wrapped in the report.
    return subprocess.run(  # noqa: S603 - the venv's own lint-imports
        [LINT_IMPORTS, "--no-cache"], cwd=tree, capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "1000"}, timeout=120)


def test_another_topic_importing_the_registrations_lock_breaks_the_protected_contract(tmp_path):
    for package in ("events", "hyperion"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    # staff sits above registration, so the layers allow this import: only the protected contract refuses it.
    with (tmp_path / "events/staff/people.py").open("a", encoding="utf-8") as module:
        module.write("from events.registration import locks  # noqa: E402,F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert PROTECTED in broken and "events.staff.people -> events.registration.locks" in broken, result.stdout
