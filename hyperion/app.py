"""The ASGI application: lifespan (engine up and down), in-memory static files, then Django."""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from hyperion import db
from hyperion.handler import LoopBoundASGIHandler
from hyperion.staticfiles import StaticFiles

logger = logging.getLogger("hyperion")


class HyperionApp:
    def __init__(self) -> None:
        self.sender: asyncio.Task | None = None
        self.sender_stop = asyncio.Event()
        self.django = LoopBoundASGIHandler()
        self.static = StaticFiles(settings.STATIC_ROOT, settings.STATIC_URL) if settings.SERVE_STATIC else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif self.static is not None and scope["type"] == "http" and self.static.matches(scope["path"]):
            await self.static(scope, receive, send)
        else:
            await self.django(scope, receive, send)

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    logger.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    logger.exception("shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        # Created here, inside uvicorn's loop: asyncpg connections are bound to the loop that made them.
        # No connection is opened yet, so the site starts (and answers 503 pages) while the database is down.
        db.engine_start()
        logger.info("database engine started (%s)", db.get_engine().url.render_as_string(hide_password=True))
        from events import live

        live.broadcaster.start()
        if settings.OUTBOX_SENDER_IN_WEB:
            from events import mailer

            self.sender_stop = asyncio.Event()
            self.sender = asyncio.create_task(mailer.run_loop(self.sender_stop), name="outbox-sender")

    async def shutdown(self) -> None:
        from events import live

        await live.broadcaster.stop()
        if self.sender is not None:
            self.sender_stop.set()
            await self.sender
            self.sender = None
        await db.engine_dispose()
        logger.info("database engine disposed")
