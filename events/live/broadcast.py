"""Live seat counts: services announce "seats changed" in their transaction, and every web process fans
the news out to the event pages it keeps open (server-sent events).

The news carries the counts. They are read inside the writing transaction, under the event's row lock,
after its last change, so each news is exact as of its commit; nothing is re-read after the commit. (A
re-read per change made every open page wait for a pooled connection behind the very registrations it
reports: during a rush, 6 s to learn that the event was full; bench/README.md.)

PostgreSQL: ``pg_notify`` inside the writing transaction, its payload the counts, read by the same
statement (no extra round trip). PostgreSQL delivers it at commit, never for a rollback, and in commit
order, so the last news a process hears is the current state. Each process keeps ONE dedicated asyncpg
connection that LISTENs (straight to PostgreSQL, never through PgBouncer's transaction pool) and hands
each news to each open stream through a one-slot queue (a slow client only ever misses intermediate
values). After a lost connection it reconnects and re-reads, since notifications sent meanwhile are gone.
SQLite (one process, the embedded default): the same fan-out, fed by an after-commit hook
with the counts the transaction read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass

import asyncpg
from django.conf import settings
from sqlalchemy import ARRAY, Integer, Text, bindparam, cast, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from events.models import Event, EventStatus, RegistrationStatus
from events.rules import visibility
from events.rules.seats import SEAT_HOLDERS, SeatState, count_of
from hyperion import db, pagecache

logger = logging.getLogger("hyperion.live")
CHANNEL = "hyperion_seats"


@dataclass(frozen=True, slots=True)
class SeatNews:
    event_id: int
    capacity: int | None
    taken: int
    waitlisted: int
    cancelled: bool

    @property
    def seats(self) -> SeatState:
        return SeatState(self.capacity, self.taken, self.waitlisted)

    @property
    def seats_left(self) -> int | None:
        return self.seats.seats_left

    @property
    def full(self) -> bool:
        return self.seats.is_full

    def as_json(self, **extra) -> str:
        return json.dumps({**asdict(self), "seats_left": self.seats_left, "full": self.full, **extra},
                          ensure_ascii=False)


# Capacity, taken and waitlisted seats and status of one event: one row, statements built once (each
# registration of a rush runs the first, each newly opened page the second).
_COUNTS = (Event.id, Event.capacity, count_of(SEAT_HOLDERS), count_of(RegistrationStatus.WAITLISTED), Event.status)
_SEATS = select(*_COUNTS).where(Event.id == bindparam("event_id"))
_SEATS_NOTIFIED = (select(func.pg_notify(CHANNEL, cast(func.json_build_array(*_COUNTS), Text)), *_COUNTS)
                   .where(Event.id == bindparam("event_id")))
# The same news, and that one student's own registrations changed (their "My events" and their state on event
# pages, which each process keeps until then): two notifications, still one statement under the lock.
_USER_NEWS = cast(func.json_build_array("user", bindparam("user_id", type_=Integer)), Text)
_SEATS_NOTIFIED_FOR_USER = (
    select(func.pg_notify(CHANNEL, cast(func.json_build_array(*_COUNTS), Text)), func.pg_notify(CHANNEL, _USER_NEWS),
           *_COUNTS)
    .where(Event.id == bindparam("event_id")))


_SEATS_NOTIFIED_FOR_USERS = (  # the same for several students: ["users", [ids]] (a batch: at most 200 ids)
    select(func.pg_notify(CHANNEL, cast(func.json_build_array(*_COUNTS), Text)),
           func.pg_notify(CHANNEL, cast(func.json_build_array("users", bindparam("user_ids", type_=ARRAY(Integer))),
                                        Text)),
           *_COUNTS)
    .where(Event.id == bindparam("event_id")))


def _news_of(row) -> SeatNews:
    event_id, capacity, taken, waitlisted, status = row
    return SeatNews(event_id, capacity, taken, waitlisted, visibility.is_cancelled(status))


async def seats_changed(session: AsyncSession, *, event_id: int, user_id: int | None = None,
                        user_ids: tuple[int, ...] = ()) -> None:
    """Announce, from inside the writing transaction (after its changes to the event and its seats, under
    the event's lock), that an event or its seats changed. ``event_id=0``: something else shown in the
    public lists changed (only the page caches care). ``user_id``: a student who now has a registration for
    the event (new, or back after leaving), so that what is kept of their own registrations is dropped; a
    change to a registration the student already had is covered by the event's news. ``user_ids``: the same
    for several students (a registration batch), still in one statement."""
    await session.flush()  # the counts below must see this transaction's pending changes
    news = None
    postgresql = db.dialect_name(session) == "postgresql"
    users = (*user_ids, *(() if user_id is None else (user_id,)))
    if event_id:
        if postgresql and len(users) > 1:
            row = (await session.execute(_SEATS_NOTIFIED_FOR_USERS, {"event_id": event_id,
                                                                     "user_ids": list(users)})).first()
            news = _news_of(row[2:]) if row is not None else None
        elif postgresql and users:
            row = (await session.execute(_SEATS_NOTIFIED_FOR_USER, {"event_id": event_id, "user_id": users[0]})).first()
            news = _news_of(row[2:]) if row is not None else None
        elif postgresql:
            row = (await session.execute(_SEATS_NOTIFIED, {"event_id": event_id})).first()
            news = _news_of(row[1:]) if row is not None else None
        else:
            row = (await session.execute(_SEATS, {"event_id": event_id})).first()
            news = _news_of(row) if row is not None else None
    if news is None and postgresql:
        await session.execute(select(func.pg_notify(CHANNEL, str(event_id))))
    _remember(session, event_id, users, news)


async def students_changed(session: AsyncSession, *, event_id: int, user_ids: tuple[int, ...]) -> None:
    """Students' own registrations for ``event_id`` changed without a change to its seats (an entry in a
    lottery's draw): what every process keeps of their registrations is dropped at commit (here, and
    elsewhere through ``NOTIFY``), the event's seats news is not sent."""
    if db.dialect_name(session) == "postgresql":
        await session.execute(select(func.pg_notify(CHANNEL, bindparam("users_news", type_=Text))),
                              {"users_news": json.dumps(["users", list(user_ids)])})
    session.sync_session.info.setdefault("hyperion_users_changed", set()).update(user_ids)


def _remember(session: AsyncSession, event_id: int, users: tuple[int, ...], news: SeatNews | None) -> None:
    """What this process drops or publishes when the transaction commits."""
    if users:
        session.sync_session.info.setdefault("hyperion_users_changed", set()).update(users)
    changed = session.sync_session.info.setdefault("hyperion_seats_changed", {})
    # On PostgreSQL the streams follow the NOTIFY, which arrives in commit order across all processes;
    # publishing our own news at our commit as well could put it after a later commit's news.
    changed[event_id] = news if db.dialect_name(session) != "postgresql" else None


def news_in_statement(session: AsyncSession, *, event_id: int, status: EventStatus, seats: SeatState,
                      user_ids: tuple[int, ...]) -> dict[str, str]:
    """``seats_changed`` for a writer that sends its news inside a larger PostgreSQL statement (a registration
    batch), with counts it knows exactly (read under the event's lock, plus its own writes): the parameters
    of ``NEWS_IN_STATEMENT``, the SELECT of the two ``pg_notify`` calls (the news, and the students whose
    own registrations changed) that the statement includes. The payloads are the ones ``seats_changed``
    sends."""
    counts = [event_id, seats.capacity, seats.taken, seats.waitlisted, status]
    _remember(session, event_id, user_ids, _news_of(counts))
    return {"news": json.dumps(counts), "users_news": json.dumps(["users", list(user_ids)])}


NEWS_IN_STATEMENT = select(func.pg_notify(CHANNEL, bindparam("news", type_=Text)).label("news_sent"),
                           func.pg_notify(CHANNEL, bindparam("users_news", type_=Text)).label("users_news_sent"))


@sa_event.listens_for(Session, "after_commit")
def _publish_after_commit(sync_session: Session) -> None:
    users = sync_session.info.pop("hyperion_users_changed", None)
    if users:
        pagecache.invalidate_tags(pagecache.user_tag(user_id) for user_id in users)
    changed = sync_session.info.pop("hyperion_seats_changed", None)
    if not changed:
        return
    pagecache.invalidate(changed)  # our own change shows on our next page at once
    for news in changed.values():
        if news is not None:
            broadcaster.publish(news)


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(sync_session: Session) -> None:
    sync_session.info.pop("hyperion_seats_changed", None)
    sync_session.info.pop("hyperion_users_changed", None)


async def seat_news(event_id: int) -> SeatNews | None:
    """The seats of ``event_id`` now (a stream's first value, and after the listener reconnects)."""
    async with db.read_connection() as session:
        row = (await session.execute(_SEATS, {"event_id": event_id})).first()
    return None if row is None else _news_of(row)


class Broadcaster:
    """One per process: subscribers per event, one LISTEN connection; re-reads only when news without
    counts arrives (after a reconnection)."""

    def __init__(self) -> None:
        self.subscribers: dict[int, set[asyncio.Queue]] = defaultdict(set)
        self.refreshing: dict[int, asyncio.Task] = {}
        self.dirty: set[int] = set()
        self.listener: asyncio.Task | None = None
        self.stopping = asyncio.Event()
        self.closing = False  # a shutdown started: new streams end at once
        # Fan-out pacing, per event: the latest news not yet handed out, the pending hand-out, the last one.
        self.pending: dict[int, SeatNews] = {}
        self.handouts: dict[int, asyncio.TimerHandle] = {}
        self.handed: dict[int, tuple[float, SeatNews]] = {}  # when, and what, the last hand-out gave
        # Other channels heard on the same LISTEN connection (one per process is enough for all news): each
        # callback gets the payload, or None after a reconnection (whatever was said meanwhile went unheard).
        self.other_channels: dict[str, Callable[[str | None], None]] = {}

    def listen(self, channel: str, callback: Callable[[str | None], None]) -> None:
        """Hand ``channel``'s notifications to ``callback`` (set up before the listener starts)."""
        self.other_channels[channel] = callback

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
                self.handed.pop(event_id, None)

    def publish(self, news: SeatNews) -> None:
        """Hand ``news`` to every open stream of its event, paced.

        Each hand-out costs a write to every open page: in a rush, 2,000 pages and one news per
        registration made the fan-out most of the server's work (26 ms of CPU per registration, 215
        writes per page; even at four hand-outs a second, 56 ms). So a news that flips what matters most
        (seats run out or come back, the event is cancelled) goes out at once; any other change (one seat
        fewer, one more in line) waits for the next hand-out, spaced by ``LIVE_SEATS_INTERVAL`` and so that
        the event's pages get at most ``LIVE_SEATS_MAX_WRITES`` writes a second from this process. A
        hand-out always carries the latest news: no page keeps a stale value."""
        pagecache.invalidate((news.event_id,))
        event_id = news.event_id
        pages = self.subscribers.get(event_id)
        if not pages:
            return
        self.pending[event_id] = news
        last = self.handed.get(event_id)
        if last is None or (news.full, news.cancelled) != (last[1].full, last[1].cancelled):
            self._hand_out(event_id)
            return
        if event_id in self.handouts:
            return  # the scheduled hand-out will carry it
        loop = asyncio.get_running_loop()
        spacing = max(settings.LIVE_SEATS_INTERVAL, len(pages) / settings.LIVE_SEATS_MAX_WRITES)
        wait = last[0] + spacing - loop.time()
        if wait <= 0:
            self._hand_out(event_id)
        else:
            self.handouts[event_id] = loop.call_later(wait, self._hand_out, event_id)

    def _hand_out(self, event_id: int) -> None:
        handout = self.handouts.pop(event_id, None)
        if handout is not None:
            handout.cancel()
        news = self.pending.pop(event_id, None)
        if news is None:
            return
        self.handed[event_id] = (asyncio.get_running_loop().time(), news)
        for queue in list(self.subscribers.get(event_id, ())):
            if queue.full():
                queue.get_nowait()  # the client has not taken the last value: replace it
            queue.put_nowait(news)

    def announce(self, event_id: int) -> None:
        """Seats of ``event_id`` changed, counts unknown: re-read once (coalescing bursts) and fan out."""
        pagecache.invalidate((event_id,))
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
                    self.publish(news)
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
                for channel, callback in self.other_channels.items():
                    await connection.add_listener(channel, self._other_news(callback))
                    callback(None)
                delay = 0.5
                pagecache.invalidate()  # changes made while we were not listening went unheard
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

    @staticmethod
    def _other_news(callback: Callable[[str | None], None]):
        return lambda _connection, _pid, _channel, payload: callback(payload)

    def _on_notify(self, _connection, _pid, _channel, payload: str) -> None:
        try:
            counts = json.loads(payload)
        except ValueError:
            logger.warning("unreadable seat news: %r", payload[:100])
            return
        if isinstance(counts, list) and len(counts) == 5:
            self.publish(_news_of(counts))
        elif isinstance(counts, list) and len(counts) == 2 and counts[0] == "user" and isinstance(counts[1], int):
            pagecache.invalidate_tags((pagecache.user_tag(counts[1]),))
        elif isinstance(counts, list) and len(counts) == 2 and counts[0] == "users" and isinstance(counts[1], list):
            pagecache.invalidate_tags(pagecache.user_tag(user) for user in counts[1] if isinstance(user, int))
        elif isinstance(counts, int):
            self.announce(counts)

    def release_streams(self) -> None:
        """Tell every open stream to finish now (a shutdown has started)."""
        self.closing = True
        for handout in self.handouts.values():
            handout.cancel()
        self.handouts.clear()
        self.pending.clear()
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
