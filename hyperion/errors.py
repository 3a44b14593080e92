"""What a database outage looks like to a visitor: a 503 "try again" page with Retry-After."""

from __future__ import annotations

import asyncio

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


def service_unavailable(request):
    response = render(request, "errors/503.html", {"retry_after": RETRY_AFTER_SECONDS}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
