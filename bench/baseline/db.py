"""Sync SQLAlchemy for the baseline: one engine (psycopg 3), sessions like the guide's "before".

The page queries are the site's own: the ``events.*.queries`` functions are declared
``async`` but only ever await ``session.execute``. ``run()`` gives them a sync ``Session`` behind an
awaitable ``execute`` and drives the coroutine to its end without an event loop (it never suspends), so the
baseline sends byte-for-byte the same SQL and maps rows with the same code, in the request's own thread.
"""

from __future__ import annotations

import os
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker


def _url():
    url = make_url(os.environ.get("BASELINE_DATABASE_URL") or os.environ["DATABASE_URL"])
    return url.set(drivername="postgresql+psycopg")


# Same pool policy as the site's engine (hyperion/db.py): no pre-ping round trip on checkout, reads in
# autocommit (one round trip per query, no BEGIN/ROLLBACK), so both stacks send the same round trips. One connection per
# thread: a thread-per-request server needs as many as it has threads.
engine = create_engine(
    _url(),
    pool_size=int(os.environ.get("DB_POOL_SIZE", "50")),
    max_overflow=int(os.environ.get("DB_MAX_OVERFLOW", "0")),
    pool_timeout=float(os.environ.get("DB_POOL_TIMEOUT", "30")),
    connect_args={"application_name": "hyperion-baseline"},
)
read_session = sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
write_session = sessionmaker(engine, expire_on_commit=False)


class _AwaitableSession:
    """What the site's query functions use of an AsyncSession, over a sync Session."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.bind = session.get_bind()  # hyperion.db.dialect_name() reads bind.dialect.name

    async def execute(self, statement, params=None):
        return self._session.execute(statement, params)


def run(query, session: Session, **kwargs) -> Any:
    """``query(session, **kwargs)`` of events.*.queries, run synchronously on ``session``."""
    coroutine: Coroutine = query(_AwaitableSession(session), **kwargs)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError(f"{query.__name__} suspended: it awaited something other than execute()")
