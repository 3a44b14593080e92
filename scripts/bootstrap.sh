# Sourced by scripts/run and scripts/test: find Python 3.12+, install uv into it, install the locked deps.
# Sets PYTHON (the project's virtualenv interpreter).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

find_python() {
    local candidate
    # pyenv honours .python-version; then any python3.12+ on PATH.
    for candidate in python python3.13 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
    for candidate in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python; do
        [ -x "$candidate" ] && { echo "$candidate"; return; }
    done
    echo "error: Python 3.12 or newer is needed (see .python-version)" >&2
    exit 1
}

BASE_PYTHON=$(find_python)
UV_VERSION=0.13.9
if ! "$BASE_PYTHON" -m uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
    echo "==> installing uv $UV_VERSION"
    "$BASE_PYTHON" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
echo "==> installing the locked dependencies (uv.lock)"
UV_PYTHON="$BASE_PYTHON" "$BASE_PYTHON" -m uv sync --locked --quiet "$@"
PYTHON="$PWD/.venv/bin/python"
export PYTHON
