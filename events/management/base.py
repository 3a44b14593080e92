"""The base of the site's async management commands: one event loop, the engine disposed at the end,
and a database that cannot be used as configured (unreachable, missing, refusing the login, not a database)
reported as a clear one-line error with a non-zero exit, not a traceback. Every command that touches the
database goes through ``database_errors()`` (AsyncCommand does it for its subclasses)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from sqlalchemy import URL, make_url

from hyperion import db
from hyperion.errors import is_database_unavailable


def _is_connection_failure(exc: BaseException) -> bool:
    original = getattr(exc, "orig", None) or exc
    return (isinstance(original, OSError | ConnectionError | TimeoutError)
            or getattr(exc, "connection_invalidated", False)
            or "connect" in str(original).lower())


def _sqlstate(exc: BaseException) -> str:
    """PostgreSQL's SQLSTATE of an error, whether asyncpg's own or wrapped by SQLAlchemy."""
    original = getattr(exc, "orig", None)
    for candidate in (exc, original, getattr(original, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def database_unreachable(exc: BaseException) -> CommandError:
    """A clear one-line error for a database that cannot be reached, or that refused the work."""
    url = make_url(settings.DATABASE_URL).render_as_string(hide_password=True)
    what = "cannot reach the database" if _is_connection_failure(exc) else "the database refused the operation"
    return CommandError(f"{what} {url}: {_first_line(exc)}")


def database_error(exc: BaseException) -> CommandError | None:
    """The one-line error for a database that cannot be used as configured, or None for anything else (a bug,
    whose traceback must show)."""
    url = db.database_url()
    shown = url.render_as_string(hide_password=True)
    state = _sqlstate(exc)
    if state == "3D000":  # invalid_catalog_name
        return CommandError(f"the database {url.database!r} does not exist on {url.host or 'localhost'}: create it "
                            f"(createdb -h {url.host or '127.0.0.1'} -U {url.username or 'postgres'} {url.database})"
                            " or fix DATABASE_URL.")
    if state[:2] == "28":  # invalid authorization: unknown role, wrong password
        return CommandError(f"the database refused the login of {shown}: {_first_line(exc)}")
    if url.get_backend_name() == "sqlite" and isinstance(getattr(exc, "orig", None) or exc, sqlite3.DatabaseError):
        problem = sqlite_problem(url)
        if problem:
            return CommandError(problem)
    if is_database_unavailable(exc):
        return database_unreachable(exc)
    return None


def sqlite_problem(url: URL | None = None) -> str:
    """Why the SQLite file of DATABASE_URL cannot be opened, found before trying (so the message is clear and
    aiosqlite gets no failed connection to clean up after the event loop is gone); "" if it can, or if the
    database is not SQLite."""
    url = url or db.database_url()
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return ""
    path = Path(url.database)
    folder = path.resolve().parent
    why = ""
    if path.is_dir():
        why = "it is a folder, not a file"
    elif not folder.is_dir():
        if folder != Path(settings.DATA_DIR).resolve():  # the data folder is made on first use
            why = f"its folder {path.parent} does not exist (create it, or fix DATABASE_URL)"
    elif path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            why = "this user cannot read and write it"
        else:
            with path.open("rb") as file:
                header = file.read(16)
            if header and header != b"SQLite format 3\x00":
                why = "it is not an SQLite database file"
    elif not os.access(folder, os.W_OK):
        why = f"it does not exist and this user cannot create it in {path.parent}"
    return f"cannot open the SQLite database {path}: {why}." if why else ""


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """Turn a database that cannot be used (database_error) into a one-line CommandError; let anything else
    through."""
    problem = sqlite_problem()
    if problem:
        raise CommandError(problem)
    try:
        yield
    except Exception as exc:
        error = database_error(exc)
        if error is None:
            raise
        raise error from None


def run_step[T](work: Callable[[], Awaitable[T]]) -> T:
    """Run one step of an interactive command against the database in its own event loop (the prompts stay
    outside any loop, so Ctrl-C at a prompt stops at once)."""

    async def run() -> T:
        async with db.engine_scope():
            return await work()

    with database_errors():
        return asyncio.run(run())


class AsyncCommand(BaseCommand):
    def handle(self, *args, **options):
        with database_errors():
            return asyncio.run(self._run(*args, **options))

    async def _run(self, *args, **options):
        async with db.engine_scope():
            return await self.ahandle(*args, **options)

    async def ahandle(self, *args, **options):
        raise NotImplementedError
