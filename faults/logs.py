"""Reading a server's log after a fault: what is trouble, and what is the site doing its job.

The site logs each database outage it turned into a 503 page as a warning with its traceback
("database unavailable during GET /…", hyperion/middleware.py): those tracebacks are expected. Any other
traceback, an "Exception in ASGI application" (uvicorn's 500), a loop closed under a connection, a
coroutine never awaited or a connection left to the garbage collector is trouble.
"""

from __future__ import annotations

import re

EXPECTED_HEADERS = ("database unavailable",)
ALWAYS_TROUBLE = ("Exception in ASGI application", "Event loop is closed", "was never awaited",
                  "garbage collector is trying to clean up", "Internal Server Error")
_EXCEPTION_LINE = re.compile(r"^[\w.]+(: |$)")
_NOT_A_RECORD = ("Traceback (most recent call last):", "The above exception", "During handling of the above")
_LEVELS = ("DEBUG:", "INFO:", "WARNING:", "ERROR:", "CRITICAL:")  # uvicorn's own lines


def _record_starts(line: str) -> bool:
    if line.startswith(_LEVELS):
        return True
    return bool(line) and not line[0].isspace() and not line.startswith(_NOT_A_RECORD) \
        and not _EXCEPTION_LINE.match(line)


def log_trouble(log: str) -> list[str]:
    """One line per problem found in ``log`` (empty: a clean log)."""
    problems = [f"log has {needle!r}" for needle in ALWAYS_TROUBLE if needle in log]
    header = ""
    for line in log.splitlines():
        if _record_starts(line):
            header = line
        elif line.startswith("Traceback (most recent call last):") and not header.startswith(EXPECTED_HEADERS):
            problems.append(f"unexpected traceback after {header[:120]!r}")
    return problems


def expected_outage_logs(log: str) -> int:
    """How many requests the site logged as turned into a 503 because the database was unavailable."""
    return sum(line.startswith(EXPECTED_HEADERS) for line in log.splitlines())
