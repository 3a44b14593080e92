"""A per-process memory of the sessions seen lately: a logged-in student's page no longer starts with a query.

Measured before it (bench/README.md): the session lookup was a third of a logged-in student's page in SQL
(290-390 µs of CPU per request, most of it SQLAlchemy and asyncpg work for one indexed row) and half of the
floor of a request that carries a cookie.

Correctness comes first, so the memory forgets everything at once whenever anything it could hold changes:
- any write to ``users`` or ``memberships`` (except a new account: nobody is logged in as it yet, and the
  log-in stamp ``last_login_at``), and any deletion from ``auth_sessions`` (log-out, password change or
  reset, purge), seen by the SQLAlchemy session that writes, whichever service or command it is. Nothing has
  to remember to call anything: a new write path is covered the day it is written.
- In this process at that transaction's commit; in the other processes through PostgreSQL's ``NOTIFY`` on
  ``hyperion_accounts``, sent inside the same transaction (delivered at commit, never for a rollback) and
  heard by the live broadcaster's LISTEN connection, which also forgets everything after a reconnection (what
  was said meanwhile went unheard).
- What no session sees (an operator's SQL in psql): each entry lives at most ``SESSION_CACHE_SECONDS``
  (default 60), and never past the session's own expiry.
Staff accounts are not kept: their navigation counts the approval queue, which changes with every event.
Forgetting everything on a log-out costs each active student one lookup, which is what every page paid before.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from sqlalchemy import event as sa_event
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import ORMExecuteState, Session

from events.models import AuthSession, Membership, User, utcnow

CHANNEL = "hyperion_accounts"
# A bound on memory: past it the oldest entries go (a dict keeps insertion order).
MAX_ENTRIES = 20_000

# Columns of users that a kept session shows or depends on; a change of any other (the log-in stamp, the
# feed token, e-mail opt-outs) leaves what the memory holds true, but forgetting is always safe.
_USER_COLUMNS_KEPT = frozenset({"email", "display_name", "is_staff", "is_active", "language", "email_verified_at",
                                "password_hash", "anonymised_at"})
_INFO_KEY = "hyperion_accounts_changed"


class SessionCache:
    def __init__(self) -> None:
        self.entries: dict[str, tuple[object, float]] = {}
        self.generation = 0  # bumped by every clear: a lookup that began before it is not stored

    def get(self, token: str):
        entry = self.entries.get(token)
        if entry is None:
            return None
        user, until = entry
        if time.monotonic() >= until:
            self.entries.pop(token, None)
            return None
        return user

    def put(self, token: str, user, *, session_expires_at: datetime, generation: int) -> None:
        seconds = settings.SESSION_CACHE_SECONDS
        if seconds <= 0 or generation != self.generation or user.is_staff:
            return
        left = (session_expires_at - utcnow()).total_seconds()
        if left <= 0:
            return
        if len(self.entries) >= MAX_ENTRIES:
            for oldest in list(self.entries)[: MAX_ENTRIES // 10]:
                del self.entries[oldest]
        self.entries[token] = (user, time.monotonic() + min(seconds, left))

    def clear(self) -> None:
        self.generation += 1
        self.entries.clear()

    def on_notify(self, _payload: str | None) -> None:
        """The broadcaster heard another process's change (or reconnected after missing some)."""
        self.clear()


session_cache = SessionCache()


# Seeing the writes. Core statements run through Session.execute (update(User)…, delete(AuthSession)…) pass
# do_orm_execute; the unit of work's own changes (session.add, attribute changes, session.delete) pass
# before_flush.

def _mark(session: Session) -> None:
    if _INFO_KEY in session.info:
        return
    session.info[_INFO_KEY] = True
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Inside the transaction: PostgreSQL delivers it at commit, to every process, never for a rollback.
        session.execute(select(text("pg_notify(:channel, '')")), {"channel": CHANNEL})


def _changes_kept_state(table_name: str, kind: str) -> bool:
    if table_name in ("users", "auth_sessions"):
        return kind != "insert"
    return table_name == "memberships"


@sa_event.listens_for(Session, "do_orm_execute")
def _watch_statements(state: ORMExecuteState) -> None:
    if state.is_select:
        return
    kind = "insert" if state.is_insert else "update" if state.is_update else "delete" if state.is_delete else None
    table = getattr(state.statement, "table", None)
    if kind and table is not None and _changes_kept_state(table.name, kind):
        _mark(state.session)


def _user_change_matters(user: User) -> bool:
    attributes = inspect(user).attrs
    return any(attributes[name].history.has_changes() for name in _USER_COLUMNS_KEPT)


def _matters(instances: Iterable[object], *, deleted: bool) -> bool:
    for instance in instances:
        if isinstance(instance, Membership):
            return True
        if isinstance(instance, AuthSession) and deleted:
            return True
        if isinstance(instance, User) and (deleted or _user_change_matters(instance)):
            return True
    return False


@sa_event.listens_for(Session, "before_flush")
def _watch_unit_of_work(session: Session, _context, _instances) -> None:
    if _INFO_KEY in session.info:
        return
    if (_matters(session.dirty, deleted=False) or _matters(session.deleted, deleted=True)
            or any(isinstance(instance, Membership) for instance in session.new)):
        # Flushing now: the NOTIFY statement may run inside before_flush (same connection and transaction).
        _mark(session)


@sa_event.listens_for(Session, "after_commit")
def _forget_after_commit(session: Session) -> None:
    if session.info.pop(_INFO_KEY, None):
        session_cache.clear()


@sa_event.listens_for(Session, "after_rollback")
def _keep_after_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)
