"""Health checks for a load balancer or an orchestrator.

``/healthz``: the process answers (liveness): no database, no template; it still goes through the whole
middleware stack, so it is also the benchmark's measure of what a request costs before any page work.
``/healthz?db=1``: and the database answers one query (readiness); 503 with Retry-After when it does not
(the middleware turns an outage into the "try again" page).
"""

from __future__ import annotations

from django.http import HttpResponse
from sqlalchemy import text

from hyperion import db


async def healthz(request):
    if request.GET.get("db"):
        async with db.read_connection() as connection:
            await connection.execute(text("SELECT 1"))
    response = HttpResponse(b"ok\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
