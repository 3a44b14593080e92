"""The image upload forms take bodies up to MAX_UPLOAD_BODY where every other address stops at MAX_REQUEST_BODY,
and since a body is read before Django knows who sends it, a worker holds only SERVER_LARGE_BODIES such bodies
at once: anonymous clients cannot make it hold thousands. In process, through the ASGI app itself."""

from __future__ import annotations

import asyncio

import httpx

from hyperion.app import HyperionApp, busy_page

MIB = 1024 * 1024


async def test_only_the_upload_forms_take_large_bodies_and_only_a_few_at_once(settings):
    settings.SERVER_LARGE_BODIES = 1
    app = HyperionApp()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    first_chunk_read, finish = asyncio.Event(), asyncio.Event()

    async def slow_upload():
        """An upload whose sender stops after its first megabyte (a slow phone, or someone holding the place)."""
        yield b"x" * MIB
        first_chunk_read.set()
        await finish.wait()
        yield b"x" * MIB

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        elsewhere = await client.post("/account/login/", content=b"x" * 3 * MIB, headers=form)
        assert elsewhere.status_code == 413  # everywhere else: MAX_REQUEST_BODY
        held = asyncio.create_task(client.post("/manage/events/1/poster/", content=slow_upload(), headers=form))
        await first_chunk_read.wait()
        refused = await client.post("/manage/events/1/poster/", content=b"x" * 3 * MIB, headers=form)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert refused.headers["X-Content-Type-Options"] == "nosniff"
        assert refused.headers["Content-Type"].startswith("text/html")  # the site's busy page, as every 503
        assert busy_page() == refused.content and refused.headers["Connection"] == "close"
        small = await client.post("/account/login/", data={"email": "a@etu.test", "password": "x"})
        assert small.status_code == 403  # a small form is not held up (Django's answer: no CSRF token)
        finish.set()
        assert (await held).status_code == 403  # read whole, then Django's answer (no CSRF token)
        assert app.large_bodies.held == 0
        again = await client.post("/manage/events/1/poster/", content=b"x" * 3 * MIB, headers=form)
        assert again.status_code == 403  # the place is free again; 3 MiB is within the upload forms' limit
        too_large = await client.post("/manage/events/1/poster/", content=b"x" * (settings.MAX_UPLOAD_BODY + 1),
                                      headers=form)
        assert too_large.status_code == 413
