# Sourced by scripts/run and scripts/test: find Python 3.12+, install uv into it, install the locked deps.
# Sets PYTHON (the project's virtualenv interpreter).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BASE_PYTHON=$(scripts/find-python)
UV_VERSION=0.13.9
if ! "$BASE_PYTHON" -m uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
    echo "==> installing uv $UV_VERSION"
    "$BASE_PYTHON" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
echo "==> installing the locked dependencies (uv.lock)"
UV_PYTHON="$BASE_PYTHON" "$BASE_PYTHON" -m uv sync --locked --quiet "$@"
PYTHON="$PWD/.venv/bin/python"
export PYTHON
