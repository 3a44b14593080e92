"""The ASGI application: lifespan (engine up and down), in-memory static files, public pages answered from
memory, the admission queue, then Django."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import html
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from functools import cache

from django.conf import settings

from hyperion import bodies, db, hooks
from hyperion.collector import CollectorPacing
from hyperion.handler import LoopBoundASGIHandler
from hyperion.mediafiles import media_files
from hyperion.pagecache import SCOPE_KEY
from hyperion.publicpages import PublicPages, Ticket, accepts_gzip
from hyperion.quickposts import QuickPosts
from hyperion.staticfiles import StaticFiles, fingerprint, security_headers
from hyperion.turns import current_connection, current_turn

logger = logging.getLogger("hyperion")

Receive = Callable[[], Awaitable[dict]]  # an ASGI receive


class HyperionApp:
    def __init__(self) -> None:
        self.hooks: list[hooks.LifespanHook] = []
        self.django = LoopBoundASGIHandler()
        self.admission = Admission(settings.SERVER_MAX_IN_FLIGHT, settings.SERVER_QUEUE_TIMEOUT)
        self.static = StaticFiles(settings.STATIC_ROOT, settings.STATIC_URL) if settings.SERVE_STATIC else None
        self.media = media_files()
        self.large_bodies = bodies.LargeBodies(settings.SERVER_LARGE_BODIES)
        self.public_pages = PublicPages()
        self.quick_posts = QuickPosts(hooks.quick_posts())
        self.collector = CollectorPacing(self.admission.idle)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif self.static is not None and scope["type"] == "http" and self.static.matches(scope["path"]):
            await self.static(scope, receive, send)
        elif self.media is not None and scope["type"] == "http" and self.media.matches(scope["path"]):
            await self.media(scope, receive, send)
        elif scope["type"] == "http":
            await self.http(scope, receive, send)
        else:
            await self.django(scope, receive, send)

    async def http(self, scope, receive, send) -> None:
        declared = bodies.declared_length(scope)
        if declared > bodies.body_limit(scope):
            await bodies.drain(receive)
            await bodies.payload_too_large(scope, send)
            return
        if not bodies.may_be_large(scope, declared):
            await self._http(scope, receive, send, declared)
            return
        # An upload form's body (up to MAX_UPLOAD_BODY) is read before Django knows who sends it: only
        # SERVER_LARGE_BODIES of them are held at once, so that anonymous clients cannot make the worker hold
        # thousands of them; the others are told to come back (503, Retry-After) before a byte is read.
        if not self.large_bodies.take():
            await bodies.too_many_large_bodies(scope, send)
            return
        try:
            await self._http(scope, receive, send, declared)
        finally:
            self.large_bodies.give_back()

    async def _http(self, scope, receive, send, declared: int) -> None:
        connection = None
        if declared:  # a body: read whole before any turn is taken (a request without one does not wait here)
            connection, receive = receive, await bodies.body_read_first(scope, receive, send)
            if receive is None:
                return
        key = self.public_pages.key(scope)
        if key is None:
            quick = self.quick_posts.for_scope(scope) if connection is not None else None
            await self.to_django(scope, receive, send, connection=connection, quick=quick)
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

    async def to_django(self, scope, receive, send, *, ticket: Ticket | None = None, first: bool = False,
                        connection: Receive | None = None, quick: hooks.QuickPost | None = None) -> None:
        if connection is not None and not self.admission.has_room():
            turn = await _turn_unless_gone(self.admission, connection, first=first)
            if turn is _GONE:
                return
        else:
            turn = await self.admission.enter(first=first)
        if turn is None:
            await _busy(scope, send)
            return
        if ticket is not None:
            ticket.admitted()
        lent = current_turn.set(turn)  # a view may give it back while it waits (hyperion/turns.py)
        watched = current_connection.set(connection)  # and watch whether its client leaves meanwhile
        try:
            send = turn.releasing(send)
            if quick is not None and isinstance(receive, bodies.Replaying):  # a rush's common case (quickposts.py)
                if await self.quick_posts.answer(quick, scope, receive.body, send):
                    return
                send = self.quick_posts.recording(quick, scope, send)
            await self.django(scope, receive, send)
        finally:
            current_connection.reset(watched)
            current_turn.reset(lent)
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
        # The app's own background pieces (settings.LIFESPAN_HOOKS: the live seat counter's listener, the
        # outbox sender), stopped in reverse order.
        self.hooks = hooks.lifespan_hooks()
        for hook in self.hooks:
            hook.start()
        self._release_streams_on_exit_signals()
        # What is loaded by now (Django, SQLAlchemy, the URLconf, settings: ~80 MB of objects that live as long
        # as the process) is never garbage: moved out of the collector's sight, a full collection, which
        # stops the event loop, walks only what requests made since (~100 ms a full collection before, at
        # 1,000 clients).
        gc.collect()
        gc.freeze()
        self.collector.start()  # and full collections when idle, not mid-rush (hyperion/collector.py)

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

        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)
            if not callable(previous):
                continue

            def handler(signum, frame, previous=previous):
                for hook in self.hooks:
                    loop.call_soon_threadsafe(hook.release_streams)
                previous(signum, frame)

            signal.signal(number, handler)

    async def shutdown(self) -> None:
        await self.collector.stop()
        for hook in reversed(self.hooks):
            await hook.stop()
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

    def idle(self) -> bool:
        """No request inside Django or waiting for a turn."""
        return self._inside == 0 and not self._waiting and not self._first

    def has_room(self) -> bool:
        """A turn is free now and nobody waits for one: ``enter`` would not wait."""
        return self._inside < self.limit and not self._waiting and not self._first

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

    async def take_again(self) -> None:
        """After a ``release`` in the middle of the request (hyperion/turns.py): a turn again, ahead of the
        requests that arrived meanwhile. Past the queue timeout the request goes on without one rather than
        answer 503: the slow part it waited for is done, what is left is short, and the database pool's own
        timeout still bounds it."""
        if await self.admission.enter(first=True) is not None:
            self.done = False

    def releasing(self, send):
        async def send_then_release(message):
            await send(message)
            if message["type"] == "http.response.start":
                self.release()

        return send_then_release


async def _busy(scope, send) -> None:
    await send_busy_page(scope, send)


BUSY_RETRY_AFTER = 5  # seconds


@cache
def busy_page() -> bytes:
    """The "very busy" page: a whole HTML page in both languages with the site's style sheet, built once and
    without a request, because it is also what the server protocol answers for a connection beyond the
    concurrency limit (hyperion/httpprotocol.py), before any request object exists."""
    css = f"{settings.STATIC_URL}css/site.css?v={fingerprint(str(settings.STATIC_ROOT), 'css/site.css')}"
    site = html.escape(settings.SITE_NAME)
    return (
        '<!doctype html>\n<html lang="fr">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Réessayez dans un instant · {site}</title>\n"
        f'<link rel="stylesheet" href="{html.escape(css)}">\n</head>\n<body>\n'
        f'<header class="site-header"><nav class="nav"><a class="brand" href="/">{site}</a></nav></header>\n'
        '<main id="main" class="container"><div class="error-page">\n'
        "<h1>Réessayez dans un instant</h1>\n"
        "<p>Le site est très sollicité : réessayez dans quelques secondes.</p>\n"
        '<p lang="en">The site is very busy: please try again in a few seconds.</p>\n'
        '<p><a href="">Recharger · <span lang="en">Reload</span></a></p>\n'
        "</div></main>\n</body>\n</html>\n"
    ).encode()


async def send_busy_page(scope, send, *, close: bool = False) -> None:
    """A 503 with Retry-After and the busy page; ``close``: and end the connection (a client refused at the
    server's door should not keep its place by keeping the connection)."""
    body = busy_page()
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", str(BUSY_RETRY_AFTER).encode()), (b"cache-control", b"no-store"),
               *security_headers(scope)]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})


_GONE = object()


async def _turn_unless_gone(admission: Admission, connection: Receive, *, first: bool):
    """Wait in line for a turn while watching the connection: a client that leaves while its request waits
    (closed the tab, gave up) is not served behind its back, e.g. registered for an event. Django's handler
    used to see the leaving where it read the body; the body is now read before the turn. Only requests with
    a body that must wait pay for the two tasks. Returns the turn (None past the queue timeout) or _GONE."""
    entering = asyncio.ensure_future(admission.enter(first=first))
    leaving = asyncio.ensure_future(connection())
    try:
        await asyncio.wait((entering, leaving), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        entering.cancel()
        leaving.cancel()
        raise
    if entering.done() or leaving.result().get("type") != "http.disconnect":
        leaving.cancel()  # uvicorn's receive only waits on an event: cancelling it loses no message
        return await entering
    entering.cancel()  # enter passes on a turn handed to it meanwhile
    with contextlib.suppress(asyncio.CancelledError):
        await entering
    return _GONE
