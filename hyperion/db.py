"""The async SQLAlchemy layer: one engine per process, and the sessions every query goes through.

The engine is created inside the running event loop (asyncpg connections belong to one loop) by the ASGI
lifespan at startup, or lazily by the first caller in a command or a test, and disposed at shutdown.

Two kinds of session:
- ``read_session()``: for pages that only read. Its connection runs in autocommit, so a query is one
  round trip, with no BEGIN/ROLLBACK pair around it.
- ``write_session()``: for services that change data. The service owns the transaction
  (``async with session.begin():``) so that its lock covers its commit. On SQLite the transaction opens
  with ``BEGIN IMMEDIATE``: a deferred BEGIN would take the write lock late and two writers would fail
  with "database is locked" instead of waiting.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import AsyncIterator

from django.conf import settings
from sqlalchemy import URL, ColumnElement, event, exc, literal, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

_engine: AsyncEngine | None = None
_write_sessions: async_sessionmaker[AsyncSession] | None = None
_read_sessions: async_sessionmaker[AsyncSession] | None = None
_read_bind: AsyncEngine | None = None

# Execution option that marks a SQLite connection as a read-only autocommit one (see _sqlite_begin).
_SQLITE_READONLY = "hyperion_readonly"


def database_url(url: str | URL | None = None) -> URL:
    """The SQLAlchemy URL of the site's database, with an async driver whatever the spelling."""
    parsed = make_url(url or settings.DATABASE_URL)
    if parsed.drivername in ("postgres", "postgresql") or (
        parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "asyncpg"
    ):  # postgres:// is Heroku's and libpq's spelling; SQLAlchemy only knows postgresql://
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.get_backend_name() == "sqlite" and parsed.get_driver_name() != "aiosqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def engine_create(url: str | URL | None = None, **overrides) -> AsyncEngine:
    """A new engine for ``url`` (default: settings.DATABASE_URL), configured for its backend."""
    parsed = database_url(url)
    options: dict = {"echo": settings.DB_ECHO}
    if parsed.get_backend_name() == "postgresql":
        options.update(
            pool_size=settings.DB_POOL_SIZE,
            max_overflow=settings.DB_MAX_OVERFLOW,
            pool_timeout=settings.DB_POOL_TIMEOUT,
            # Last in, first out: the connections in use stay few and warm. SQLAlchemy's asyncpg dialect
            # prepares each statement on each connection (a round trip more, the first time); a first-in,
            # first-out pool rotated every request through all of its connections, so on a database 100 ms
            # away a registration paid ~4 of those extra round trips long after the start: with +100 ms a
            # round trip its median went from 1.43 s to 1.03 s (the 50-thread baseline's: 1.0 s), the home
            # page's 90th percentile from 817 to 146 ms (bench/README.md, "The pool, last in first out").
            pool_use_lifo=settings.DB_POOL_LIFO,
            # No pool_pre_ping: on asyncpg it costs up to three round trips per checkout (BEGIN, ";",
            # ROLLBACK unless the connection is already in autocommit), which doubled a read page's
            # round trips. _discard_closed_connection (below) does the same job locally, for free.
            connect_args={
                "statement_cache_size": settings.DB_STATEMENT_CACHE_SIZE,
                "server_settings": {"application_name": settings.DB_APPLICATION_NAME},
                "timeout": 10,
            },
        )
    else:
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            # The data folder of the default database is made on first use; a folder named in DATABASE_URL
            # that does not exist is an error the caller reports ("unable to open database file").
            folder = Path(parsed.database).resolve().parent
            if folder == Path(settings.DATA_DIR).resolve():
                folder.mkdir(parents=True, exist_ok=True)
        # aiosqlite runs one thread per connection: the pool bounds them.
        options.update(
            pool_size=min(settings.DB_POOL_SIZE, 5),
            max_overflow=0,
            pool_timeout=settings.DB_POOL_TIMEOUT,
            pool_use_lifo=settings.DB_POOL_LIFO,
            connect_args={"timeout": 30},
        )
    options.update(overrides)
    if options.get("poolclass") is NullPool:
        for pool_option in ("pool_size", "max_overflow", "pool_timeout", "pool_use_lifo"):
            options.pop(pool_option, None)
    engine = create_async_engine(parsed, **options)
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine.sync_engine, "checkout", _discard_closed_connection)
    if is_sqlite(engine):
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


# Letters that Unicode does not decompose into a base letter and an accent, spelled as PostgreSQL's unaccent
# rules spell them, so that both databases fold "Œnologie" to "oenologie".
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th"})


def text_fold(text: str | None) -> str:
    """Lower-cased text without accents or ligatures: "Soirée" and "soiree", "Œnologie" and "oenologie" fold
    alike (SQLite's search; PostgreSQL does the same with lower(unaccent(...)))."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold().translate(_LIGATURES)


def text_contains_words(document: str | None, query: str | None) -> bool:
    """Whether every word of ``query`` appears in ``document``, in any order, folded (SQLite's
    ``hyperion_words_in``): "crepes jeux" finds "Soirée jeux et crêpes"."""
    folded = text_fold(document)
    return all(word in folded for word in text_fold(query).split())


def _discard_closed_connection(dbapi_connection, _record, _proxy) -> None:
    """A pooled connection that died while idle (database restart, pg_terminate_backend, PgBouncer
    restart) is replaced, not handed out: the server closed its socket, the event loop read the EOF and
    asyncpg marked the connection closed, so the check is local (no round trip, unlike pre-ping).
    A connection lost without a word (a silent network cut) fails on first use instead: that request gets
    the "try again" page and SQLAlchemy then discards every connection as old as the one that failed."""
    if dbapi_connection.driver_connection.is_closed():  # the asyncpg connection under the adapter
        raise exc.DisconnectionError("pooled connection closed by the server")  # the pool retries


def _sqlite_connect(dbapi_connection, _record) -> None:
    # We emit BEGIN ourselves (see _sqlite_begin): turn off the driver's own transaction handling.
    dbapi_connection.isolation_level = None
    dbapi_connection.create_function("hyperion_fold", 1, text_fold, deterministic=True)
    dbapi_connection.create_function("hyperion_words_in", 2, text_contains_words, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn) -> None:
    if conn.get_execution_options().get(_SQLITE_READONLY):
        return  # each SELECT is its own implicit read transaction
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def engine_start(url: str | URL | None = None, **overrides) -> AsyncEngine:
    """Create the process's engine (idempotent). Call it from inside the running event loop."""
    global _engine, _write_sessions, _read_sessions, _read_bind
    if _engine is None:
        _engine = engine_create(url, **overrides)
        read_bind = (
            _engine.execution_options(**{_SQLITE_READONLY: True})
            if is_sqlite(_engine)
            else _engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        _write_sessions = async_sessionmaker(_engine, expire_on_commit=False, autoflush=False)
        _read_sessions = async_sessionmaker(read_bind, expire_on_commit=False, autoflush=False)
        _read_bind = read_bind
    return _engine


async def engine_dispose() -> None:
    """Close every pooled connection and forget the engine (ASGI shutdown, end of a command or test)."""
    global _engine, _write_sessions, _read_sessions, _read_bind
    engine, _engine, _write_sessions, _read_sessions, _read_bind = _engine, None, None, None, None
    if engine is not None:
        await engine.dispose()


def get_engine() -> AsyncEngine:
    return engine_start()


def write_session() -> AsyncSession:
    """A session for a unit of work that writes; the caller begins and commits its transaction."""
    engine_start()
    return _write_sessions()  # type: ignore[misc]  # set by engine_start


def read_session() -> AsyncSession:
    """A session whose queries each run alone in autocommit: for pages that only read."""
    engine_start()
    return _read_sessions()  # type: ignore[misc]  # set by engine_start


@contextlib.asynccontextmanager
async def read_connection() -> AsyncIterator[AsyncConnection]:
    """A pooled connection in autocommit for the hot read paths: SQLAlchemy Core rows, no ORM session
    (its identity map and unit of work cost ~0.5 ms per page for data that is only rendered)."""
    engine_start()
    async with _read_bind.connect() as connection:  # type: ignore[union-attr]  # set by engine_start
        yield connection


# What a read query is handed: a read session (ORM entities, commands and tests) or a read connection (Core
# rows, the pages). A query that builds ORM entities still asks for an AsyncSession.
Reader = AsyncSession | AsyncConnection


def dialect_name(handle: Reader) -> str:
    return handle.dialect.name if isinstance(handle, AsyncConnection) else \
        handle.bind.dialect.name  # type: ignore[union-attr]  # sessions are bound (engine_start)


def insert_for(handle: Reader):
    """The dialect's ``insert`` (PostgreSQL's or SQLite's: both have ON CONFLICT, which the generic one lacks)."""
    return postgresql.insert if dialect_name(handle) == "postgresql" else sqlite.insert


@contextlib.asynccontextmanager
async def engine_scope(url: str | URL | None = None) -> AsyncIterator[AsyncEngine]:
    """Start the engine for a command or a script and dispose it at the end, whatever happens."""
    engine = engine_start(url)
    try:
        yield engine
    finally:
        await engine_dispose()


def constant_in(column, values) -> ColumnElement[bool]:
    """SQL ``column IN (...)`` for a fixed tuple of the code's own constants (statuses, roles), compiled once.
    SQLAlchemy's ``in_(values)`` makes an "expanding" parameter that every execution renders again into the
    statement (``_process_parameters_for_postcompile``: 9% of a session lookup's CPU, measured by py-spy);
    one bound parameter per value is part of the cached statement."""
    return column.in_([literal(value, column.type) for value in values])

