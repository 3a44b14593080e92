"""The ASGI application: lifespan (engine up and down), in-memory static files, public pages answered from
memory, the admission queue, then Django."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import deque

from django.conf import settings

from hyperion import db
from hyperion.handler import LoopBoundASGIHandler
from hyperion.publicpages import SCOPE_KEY, PublicPages, Ticket, accepts_gzip
from hyperion.staticfiles import StaticFiles, security_headers

logger = logging.getLogger("hyperion")


class HyperionApp:
    def __init__(self) -> None:
        self.sender: asyncio.Task | None = None
        self.sender_stop = asyncio.Event()
        self.django = LoopBoundASGIHandler()
        self.admission = Admission(settings.SERVER_MAX_IN_FLIGHT, settings.SERVER_QUEUE_TIMEOUT)
        self.static = StaticFiles(settings.STATIC_ROOT, settings.STATIC_URL) if settings.SERVE_STATIC else None
        self.public_pages = PublicPages()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif self.static is not None and scope["type"] == "http" and self.static.matches(scope["path"]):
            await self.static(scope, receive, send)
        elif scope["type"] == "http" and _declared_length(scope) > settings.MAX_REQUEST_BODY:
            await _drain(receive)
            await _payload_too_large(scope, send)
        elif scope["type"] == "http":
            key = self.public_pages.key(scope)
            if key is None:
                await self.to_django(scope, receive, send)
                return
            page, first = await self.public_pages.lookup(key)
            if page is not None:  # no turn in the admission queue: stored bytes cost next to nothing
                await page.send(send, gzip_accepted=accepts_gzip(scope))
                return
            ticket = self.public_pages.filling(key)
            try:
                await self.to_django({**scope, SCOPE_KEY: ticket}, receive, self.public_pages.recording(ticket, send),
                                     ticket=ticket, first=first)
            finally:
                self.public_pages.filled(ticket)
        else:
            await self.django(scope, receive, send)

    async def to_django(self, scope, receive, send, *, ticket: Ticket | None = None, first: bool = False) -> None:
        turn = await self.admission.enter(first=first)
        if turn is None:
            await _busy(scope, send)
            return
        if ticket is not None:
            ticket.admitted()
        try:
            await self.django(scope, _body_limited(receive), turn.releasing(send))
        except BodyTooLarge:  # raised while Django reads the body, before any response started
            await _drain(receive)
            await _payload_too_large(scope, send)
        finally:
            turn.release()

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
        from events.live import broadcast

        broadcast.broadcaster.start()
        self._release_streams_on_exit_signals()
        if settings.OUTBOX_SENDER_IN_WEB:
            from events.notifications import mailer

            self.sender_stop = asyncio.Event()
            self.sender = asyncio.create_task(mailer.run_loop(self.sender_stop), name="outbox-sender")
        # What is loaded by now (Django, SQLAlchemy, the URLconf, settings: ~80 MB of objects that live as long
        # as the process) is never garbage: moved out of the collector's sight, a full collection, which
        # stops the event loop, walks only what requests made since (~100 ms a full collection before, at
        # 1,000 clients).
        gc.collect()
        gc.freeze()

    def _release_streams_on_exit_signals(self) -> None:
        """End the open live-seat streams as soon as a shutdown starts.

        uvicorn waits for open responses (up to --timeout-graceful-shutdown) before it runs the lifespan
        shutdown, and server-sent event streams never finish by themselves: they would hold the exit and
        then be cut. uvicorn installs its signal handlers before the lifespan starts, so we chain ours in
        front: release the streams (they end cleanly, the browser reconnects elsewhere), then let uvicorn
        do what it does. Only the main thread may set signal handlers; elsewhere (tests) nothing happens.
        """
        import signal
        import threading

        from events.live import broadcast

        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)
            if not callable(previous):
                continue

            def handler(signum, frame, previous=previous):
                loop.call_soon_threadsafe(broadcast.broadcaster.release_streams)
                previous(signum, frame)

            signal.signal(number, handler)

    async def shutdown(self) -> None:
        from events.live import broadcast

        await broadcast.broadcaster.stop()
        if self.sender is not None:
            self.sender_stop.set()
            await self.sender
            self.sender = None
        await db.engine_dispose()
        logger.info("database engine disposed")


class Admission:
    """At most ``limit`` requests inside Django at once; the others wait for their turn in arrival order.

    Without it, 1,000 clients mean 1,000 requests half-way through Django at once, each holding its
    request, middleware frames and rendered page while it queues for one of the pool's connections, once
    per query: a page that needs three checkouts queues three times behind everyone, the slowest clients
    time out, and memory grows with the crowd. With it, a waiting request is a parsed request line and
    headers, it waits once, in FIFO order, and once admitted it runs on a pool sized for the admitted
    ones. A turn ends when the response starts, so a live-seat stream holds none while it stays open, and
    passes straight to the first in line. A request that waits longer than ``timeout`` gets a 503 with
    Retry-After.

    A waiting request is one future in a queue. The timeouts are enforced by one timer for the whole queue
    (its deadlines come in arrival order), at most ``_SWEEP`` late, rather than by a timer per request as
    ``asyncio.wait_for`` would arm: with a thousand clients waiting, that was a thousand timers, their
    handles and coroutines (about 1 KB each).
    """

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._sweep_every = min(0.25, timeout / 4)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inside = 0
        self._first: deque[tuple[float, asyncio.Future]] = deque()  # served before the others
        self._waiting: deque[tuple[float, asyncio.Future]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        """How many requests wait in line now."""
        return len(self._first) + len(self._waiting)

    def _for_this_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # one queue per event loop (tests run several loops in one process)
            self._loop, self._inside, self._sweeper = loop, 0, None
            self._first, self._waiting = deque(), deque()
        return loop

    async def enter(self, *, first: bool = False) -> _Turn | None:
        """Wait for a turn (None: waited longer than the timeout). ``first``: ahead of the others (a stored
        page being rendered again while every visitor gets its old copy, or a visitor who already waited
        for another's render of the same page and got nothing from it)."""
        loop = self._for_this_loop()
        if self._inside < self.limit and not self._waiting and not self._first:
            self._inside += 1
            return _Turn(self)
        turn = loop.create_future()
        (self._first if first else self._waiting).append((loop.time() + self.timeout, turn))
        if self._sweeper is None:
            self._sweeper = loop.call_at(loop.time() + self.timeout, self._sweep)
        try:
            admitted = await turn
        except asyncio.CancelledError:  # the client left while in line
            if turn.done() and not turn.cancelled() and turn.result():
                self.release()  # handed a turn it will not use: pass it on
            raise
        return _Turn(self) if admitted else None

    def release(self) -> None:
        """A request inside is done with its turn: the first in line gets it."""
        for line in (self._first, self._waiting):
            while line:
                _deadline, turn = line.popleft()
                if not turn.done():
                    turn.set_result(True)
                    return
        self._inside -= 1

    def _sweep(self) -> None:
        self._sweeper = None
        now = self._loop.time()  # type: ignore[union-attr]  # set by the enter that armed the sweep
        for line in (self._first, self._waiting):  # each in arrival order, so in deadline order
            while line and (line[0][0] <= now or line[0][1].done()):
                _deadline, turn = line.popleft()
                if not turn.done():
                    turn.set_result(False)  # waited too long: a 503
        heads = [line[0][0] for line in (self._first, self._waiting) if line]
        if heads:
            self._sweeper = self._loop.call_at(  # type: ignore[union-attr]
                max(min(heads), now + self._sweep_every), self._sweep)


class _Turn:
    __slots__ = ("admission", "done")

    def __init__(self, admission: Admission) -> None:
        self.admission, self.done = admission, False

    def release(self) -> None:
        if not self.done:
            self.done = True
            self.admission.release()

    def releasing(self, send):
        async def send_then_release(message):
            await send(message)
            if message["type"] == "http.response.start":
                self.release()

        return send_then_release


async def _busy(scope, send) -> None:
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"5"),
                            *security_headers(scope)]})
    await send({"type": "http.response.body",
                "body": "Le site est très sollicité : réessayez dans quelques secondes.\n"
                        "The site is very busy: please try again in a few seconds.\n".encode()})


class BodyTooLarge(Exception):
    pass


def _declared_length(scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _body_limited(receive):
    """Refuse a body larger than MAX_REQUEST_BODY even without a Content-Length (chunked uploads):
    Django would otherwise spool all of it to disk before looking at it."""
    received = 0

    async def limited_receive():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > settings.MAX_REQUEST_BODY:
                raise BodyTooLarge
        return message

    return limited_receive


async def _drain(receive, budget: int = 8 * 1024 * 1024) -> None:
    """Read and drop what the client is still sending (up to ``budget``), so that it can read our 413
    instead of seeing its connection reset mid-upload; past the budget the connection is simply closed."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _payload_too_large(scope, send) -> None:
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
                            *security_headers(scope)]})
    await send({"type": "http.response.body", "body": b"Request body too large."})
