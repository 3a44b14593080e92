"""What a new user's first commands rely on: `make run` and `make test` share one environment, and the
.env that `make run` writes stays out of git."""

import os
import re
import shutil
import subprocess

import pytest

from tests.support import ROOT


def test_make_run_installs_without_removing_the_test_tools():
    """scripts/run syncs the locked dependencies without the dev group. Exactly, that would uninstall pytest
    and the rest from under a `make test` running in the same checkout; and given a pyenv shim's path instead
    of the interpreter .venv was made from, uv replaces the whole .venv. Asked of uv as a dry run, with the
    interpreter scripts/bootstrap.sh uses, the sync scripts/run does must change nothing in the environment
    the tests run in."""
    bootstrap = re.search(r"^source .*bootstrap\.sh\"?(?P<args>.*)$", (ROOT / "scripts/run").read_text(), re.M)
    assert bootstrap, "scripts/run sources scripts/bootstrap.sh"
    found = subprocess.run([ROOT / "scripts/find-python"], capture_output=True, text=True)  # noqa: S603
    assert found.returncode == 0, found.stderr
    base_python = found.stdout.strip()
    if subprocess.run([base_python, "-m", "uv", "--version"], capture_output=True).returncode != 0:  # noqa: S603
        pytest.skip("uv is not installed in the base interpreter (scripts/bootstrap.sh installs it there)")
    result = subprocess.run(  # noqa: S603 - uv, as scripts/bootstrap.sh runs it
        [base_python, "-m", "uv", "sync", "--locked", "--dry-run", *bootstrap["args"].split()],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "UV_PYTHON": base_python},
    )
    assert result.returncode == 0, result.stderr
    assert "Would replace" not in result.stderr, result.stderr
    removed = [line for line in result.stderr.splitlines() if line.startswith(" - ")]
    assert removed == [], result.stderr


def test_the_env_file_make_run_writes_is_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)  # noqa: S603,S607
    assert result.returncode == 0, ".env must be listed in .gitignore"
