"""Live seat counts: services announce "seats changed" in their transaction, and every web process fans
the news out to the event pages it keeps open (server-sent events).

PostgreSQL: ``pg_notify`` inside the writing transaction (delivered at commit, never for a rollback); each
process keeps ONE dedicated asyncpg connection that LISTENs (straight to PostgreSQL, never through
PgBouncer's transaction pool), re-reads the seats once per change and hands the new value to each open
stream through a one-slot queue (a slow client only ever misses intermediate values). After a lost
connection it reconnects and re-reads, since notifications sent meanwhile are gone (perf-notes.md).
SQLite (one process, the embedded default): the same fan-out, fed by an after-commit hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass

import asyncpg
from django.conf import settings
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from events import pagecache
from events.models import Event, EventStatus, Registration, RegistrationStatus
from hyperion import db

logger = logging.getLogger("hyperion.live")
CHANNEL = "hyperion_seats"


@dataclass(frozen=True, slots=True)
class SeatNews:
    event_id: int
    capacity: int | None
    confirmed: int
    waitlisted: int
    cancelled: bool

    @property
    def seats_left(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.confirmed, 0)

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.confirmed >= self.capacity

    def as_json(self) -> str:
        return json.dumps({**asdict(self), "seats_left": self.seats_left, "full": self.full})


async def seats_changed(session: AsyncSession, *, event_id: int) -> None:
    """Announce, from inside the writing transaction, that an event or its seats changed. This process
    hears it after the commit; on PostgreSQL the other processes hear it through NOTIFY (also at commit,
    never for a rollback)."""
    if db.dialect_name(session) == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, :payload)"),
                              {"channel": CHANNEL, "payload": str(event_id)})
    session.sync_session.info.setdefault("hyperion_seats_changed", set()).add(event_id)


@sa_event.listens_for(Session, "after_commit")
def _publish_after_commit(sync_session: Session) -> None:
    changed = sync_session.info.pop("hyperion_seats_changed", None)
    if changed:
        for event_id in changed:
            broadcaster.announce(event_id)


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(sync_session: Session) -> None:
    sync_session.info.pop("hyperion_seats_changed", None)


async def seat_news(event_id: int) -> SeatNews | None:
    confirmed = (select(func.count(Registration.id)).where(
        Registration.event_id == Event.id, Registration.status == RegistrationStatus.CONFIRMED)
        .correlate(Event).scalar_subquery())
    waitlisted = (select(func.count(Registration.id)).where(
        Registration.event_id == Event.id, Registration.status == RegistrationStatus.WAITLISTED)
        .correlate(Event).scalar_subquery())
    async with db.read_connection() as session:
        row = (await session.execute(select(Event.capacity, confirmed, waitlisted, Event.status)
                                     .where(Event.id == event_id))).first()
    if row is None:
        return None
    return SeatNews(event_id, row[0], row[1], row[2], row[3] == EventStatus.CANCELLED)


class Broadcaster:
    """One per process: subscribers per event, one re-read per change, one LISTEN connection."""

    def __init__(self) -> None:
        self.subscribers: dict[int, set[asyncio.Queue]] = defaultdict(set)
        self.refreshing: dict[int, asyncio.Task] = {}
        self.dirty: set[int] = set()
        self.listener: asyncio.Task | None = None
        self.stopping = asyncio.Event()
        self.closing = False  # a shutdown started: new streams end at once

    def subscribe(self, event_id: int) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        if self.closing:
            queue.put_nowait(None)
        self.subscribers[event_id].add(queue)
        self._ensure_listening()
        return queue

    def unsubscribe(self, event_id: int, queue: asyncio.Queue) -> None:
        queues = self.subscribers.get(event_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self.subscribers[event_id]

    def announce(self, event_id: int) -> None:
        """Seats of ``event_id`` changed: re-read once (coalescing bursts) and fan out."""
        pagecache.invalidate()
        if event_id not in self.subscribers:
            return
        if event_id in self.refreshing:
            self.dirty.add(event_id)
            return
        self.refreshing[event_id] = asyncio.ensure_future(self._refresh(event_id))

    async def _refresh(self, event_id: int) -> None:
        try:
            while True:
                self.dirty.discard(event_id)
                news = await seat_news(event_id)
                if news is not None:
                    for queue in list(self.subscribers.get(event_id, ())):
                        if queue.full():
                            queue.get_nowait()  # the client has not taken the last value: replace it
                        queue.put_nowait(news)
                if event_id not in self.dirty:
                    return
        except Exception:
            logger.exception("could not refresh the seats of event %s", event_id)
        finally:
            self.refreshing.pop(event_id, None)

    def start(self) -> None:
        """At startup: listen at once, so that cached pages hear of other processes' changes."""
        self.stopping = asyncio.Event()
        self._ensure_listening()

    def _ensure_listening(self) -> None:
        if self.listener is None and db.database_url().get_backend_name() == "postgresql":
            self.listener = asyncio.ensure_future(self._listen_forever())

    async def _listen_forever(self) -> None:
        url = db.database_url(settings.DB_LISTEN_URL or None)
        delay = 0.5
        while not self.stopping.is_set():
            connection = None
            try:
                connection = await asyncpg.connect(
                    host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                    database=url.database, timeout=10,
                    server_settings={"application_name": f"{settings.DB_APPLICATION_NAME}-listen"})
                await connection.add_listener(CHANNEL, self._on_notify)
                delay = 0.5
                for event_id in list(self.subscribers):  # what changed while we were not listening
                    self.announce(event_id)
                while not self.stopping.is_set() and not connection.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), timeout=5)
                    if not connection.is_closed():
                        await connection.execute("SELECT 1")  # notice a dead connection within seconds
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                logger.warning("seat listener lost its connection (%s); reconnecting", error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=delay)
                delay = min(delay * 2, 10)
            finally:
                if connection is not None and not connection.is_closed():
                    await connection.close(timeout=2)

    def _on_notify(self, _connection, _pid, _channel, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self.announce(int(payload))

    def release_streams(self) -> None:
        """Tell every open stream to finish now (a shutdown has started)."""
        self.closing = True
        for queues in self.subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)  # None tells a stream to finish

    async def stop(self) -> None:
        """At shutdown: end the listener and release every open stream."""
        self.stopping.set()
        self.release_streams()
        if self.listener is not None:
            with contextlib.suppress(Exception):
                await self.listener
        self.listener = None
        self.stopping = asyncio.Event()
        self.closing = False


broadcaster = Broadcaster()
