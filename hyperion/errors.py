"""What a database outage looks like to a visitor: a 503 "try again" page with Retry-After."""

from __future__ import annotations

import asyncio

import asyncpg
from django.shortcuts import render
from sqlalchemy import exc as sa_exc

# Connection refused or lost, pool exhausted past its timeout, a statement cut by the server going away.
DATABASE_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)

RETRY_AFTER_SECONDS = 5

# SQLSTATE classes of a server going away or refusing connections (57: operator intervention, e.g. a
# shutdown; 08: connection exception; 53: insufficient resources, e.g. "too many clients").
_OUTAGE_SQLSTATE_CLASSES = ("57", "08", "53")


def is_database_unavailable(error: BaseException) -> bool:
    """An outage (retry later), as opposed to a bug or bad data (which must stay a 500 and be fixed)."""
    if isinstance(error, DATABASE_UNAVAILABLE):
        return True
    # asyncpg's own errors can surface unwrapped (a pooled connection found closed at checkout).
    if isinstance(error, asyncpg.InterfaceError | asyncpg.PostgresConnectionError):
        return True
    if isinstance(error, asyncpg.PostgresError):
        return (getattr(error, "sqlstate", None) or "")[:2] in _OUTAGE_SQLSTATE_CLASSES
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        original = error.orig
        for candidate in (original, getattr(original, "__cause__", None)):
            code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if isinstance(code, str) and code[:2] in _OUTAGE_SQLSTATE_CLASSES:
                return True
    return False


def service_unavailable(request):
    response = render(request, "errors/503.html", {"retry_after": RETRY_AFTER_SECONDS}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
