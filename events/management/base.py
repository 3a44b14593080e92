"""The base of the site's async management commands: one event loop, the engine disposed at the end,
and an unreachable database reported as a clear error with a non-zero exit, not a traceback."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from sqlalchemy import make_url

from hyperion import db
from hyperion.errors import is_database_unavailable


def _is_connection_failure(exc: BaseException) -> bool:
    original = getattr(exc, "orig", None) or exc
    return (isinstance(original, OSError | ConnectionError | TimeoutError)
            or getattr(exc, "connection_invalidated", False)
            or "connect" in str(original).lower())


def database_unreachable(exc: BaseException) -> CommandError:
    """A clear one-line error for a database that cannot be reached, or that refused the work."""
    url = make_url(settings.DATABASE_URL).render_as_string(hide_password=True)
    text = str(getattr(exc, "orig", None) or exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    what = "cannot reach the database" if _is_connection_failure(exc) else "the database refused the operation"
    return CommandError(f"{what} {url}: {reason}")


class AsyncCommand(BaseCommand):
    def handle(self, *args, **options):
        try:
            return asyncio.run(self._run(*args, **options))
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            raise database_unreachable(exc) from None

    async def _run(self, *args, **options):
        async with db.engine_scope():
            return await self.ahandle(*args, **options)

    async def ahandle(self, *args, **options):
        raise NotImplementedError
