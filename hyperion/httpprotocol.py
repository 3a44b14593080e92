"""The server's HTTP protocol: uvicorn's httptools protocol that sheds connections which send no request.

uvicorn gives a request as long as it likes to finish its headers, and its ``--limit-concurrency`` counts
every open connection, so a crowd of connections that each send one header line now and then (slowloris)
costs nothing to hold and fills the limit: every request, health checks included, then gets uvicorn's
plain-text 503 for as long as they stay. Here:

- **Header timeout** (``SERVER_HEADER_TIMEOUT``): a request's line and headers must arrive within that many
  seconds of the connection opening or, on a kept-alive connection, of the request's first byte; past it the
  connection is closed (with a 408 if the request had begun).
- **Only requests count**: a connection with no request in progress (still sending its headers, or idle
  between two requests) is not counted against ``--limit-concurrency``; the limit bounds requests being
  served, which is what costs memory and work.
- **A cap on those connections** (``SERVER_MAX_IDLE_CONNECTIONS`` per worker): past it the one that has waited
  longest is closed. A real client sends its headers within milliseconds, so it is never the oldest; a
  flood of new connections cannot run the process out of file descriptors or lock new clients out.
- **The site's 503**: beyond the limit, the answer is the site's busy page (HTML, Retry-After), not uvicorn's
  plain text.

Served with ``--http hyperion.httpprotocol:HyperionHttpProtocol`` (``manage.py runserver`` does).
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from hyperion.staticfiles import security_headers

PROTOCOL = "hyperion.httpprotocol:HyperionHttpProtocol"

# Per server (a process may run several, as the tests do): the connections with no request in progress,
# oldest first (a dict keeps insertion order and removes in O(1)).
_idle_by_server: weakref.WeakKeyDictionary[ServerState, dict[HyperionHttpProtocol, None]] = \
    weakref.WeakKeyDictionary()


class HyperionHttpProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    max_idle: int = 2000

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        _read_settings()
        # uvicorn's own check counts every connection; ours (on_headers_complete) counts requests.
        self.request_limit = self.limit_concurrency
        self.limit_concurrency = None
        self.idle = _idle_by_server.setdefault(server_state, {})
        self.header_timer: asyncio.TimerHandle | None = None
        self.request_begun = False

    # Connection without a request in progress: not counted against the limit, capped, timed.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._become_idle()
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.idle.pop(self, None)
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.request_begun = True
        if self.header_timer is None:  # a kept-alive connection's next request: its headers are timed too
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        self.request_begun = False
        self.idle.pop(self, None)
        app = self.app
        if self._over_limit():
            self.logger.warning("Exceeded concurrency limit.")
            self.app = _busy
        try:
            super().on_headers_complete()
        finally:
            self.app = app
        if self.cycle is not None and self.cycle.scope is self.scope and self.scope["method"] != "HEAD":
            _write_head_with_body(self.cycle, self.loop)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle until the next request, unless the response closed the connection or a pipelined request
        # took over (then self.cycle is that request's, not complete).
        if not self.transport.is_closing() and self.cycle.response_complete and not self.pipeline:
            self._become_idle()

    def _over_limit(self) -> bool:
        if self.request_limit is None:
            return False
        serving = len(self.connections) - len(self.idle)  # this one included
        return serving > self.request_limit or len(self.tasks) >= self.request_limit

    def _become_idle(self) -> None:
        self.idle[self] = None
        while len(self.idle) > self.max_idle:
            oldest = next(iter(self.idle))
            del self.idle[oldest]
            oldest._shed()

    def _arm_header_timer(self) -> None:
        self.header_timer = self.loop.call_later(self.header_timeout, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _header_timeout(self) -> None:
        self.header_timer = None
        self._shed()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP, with the headers every answer of the site carries."""
        body = msg.encode("ascii", "replace")
        headers = [*self.server_state.default_headers, (b"content-type", b"text/plain; charset=utf-8"),
                   (b"content-length", b"%d" % len(body)), (b"connection", b"close"), *security_headers({})]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(STATUS_LINE[400] + head + b"\r\n" + body)
        self.transport.close()

    def _shed(self) -> None:
        """Close a connection that has sent no complete request (a 408 if it had begun one)."""
        self._disarm_header_timer()
        if self.transport.is_closing():
            return
        if self.request_begun and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(_timed_out())
        self.transport.close()


@functools.cache
def _timed_out() -> bytes:
    """The 408 (no body), with the headers every answer of the site carries (Permissions-Policy, CSP...)."""
    headers = b"".join(name + b": " + value + b"\r\n" for name, value in security_headers({}))
    return STATUS_LINE[408] + b"content-length: 0\r\nconnection: close\r\n" + headers + b"\r\n"


class _HeadWithBody:
    """The transport a request's cycle writes to: the response's head (status line and headers, which uvicorn
    writes on ``http.response.start``) is held until the first body write and goes out with it in one
    write, so a page costs one ``send`` system call instead of two (and the client one packet to read).
    A head not followed by a body in the same turn of the loop (a stream waiting for its first event)
    goes out on the next turn. Everything else goes to the connection's transport."""

    __slots__ = ("transport", "loop", "holding", "head")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport, self.loop, self.holding, self.head = transport, loop, False, b""

    def write(self, data: bytes) -> None:
        if self.holding:  # the head, written by uvicorn's send of http.response.start
            self.holding = False
            self.head = data
            self.loop.call_soon(self.flush)
        elif self.head:
            head, self.head = self.head, b""
            self.transport.write(head + data)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        if self.head:
            head, self.head = self.head, b""
            if not self.transport.is_closing():
                self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _write_head_with_body(cycle: RequestResponseCycle, loop: asyncio.AbstractEventLoop) -> None:
    """Give the cycle a ``_HeadWithBody`` transport, told by the cycle's ``send`` which write is the head.
    (HEAD responses are left alone: uvicorn writes no body for them.)"""
    transport = _HeadWithBody(cycle.transport, loop)
    cycle.transport = transport  # type: ignore[assignment]  # writes, closes and is_closing are what it is asked
    # The class's function and a weak reference, not the bound ``cycle.send``: kept on the cycle, a bound
    # method would make the cycle refer to itself, and every request's cycle, scope, headers and transport
    # would wait for a full garbage collection instead of going when the request ends (measured with the
    # benchmark's logged-in mix at 1,000 clients: ~1,300 of them waiting at any time). The cycle outlives
    # every call: uvicorn's task runs the application from the cycle's own ``run_asgi``.
    uvicorn_send = type(cycle).send
    of_cycle = weakref.ref(cycle)

    async def send(message) -> None:
        transport.holding = message["type"] == "http.response.start"
        try:
            await uvicorn_send(of_cycle(), message)  # type: ignore[arg-type]  # alive while it runs: see above
        finally:
            transport.holding = False

    cycle.send = send  # type: ignore[method-assign]  # run_asgi hands the app self.send: this one


async def _busy(scope, receive, send) -> None:
    from hyperion.app import send_busy_page

    await send_busy_page(scope, send, close=True)


_settings_read = False


def _read_settings() -> None:
    """Take the timeout and the cap from the site's settings once, at the first connection (the settings
    are configured by then: uvicorn loads the application before it serves)."""
    global _settings_read
    if _settings_read:
        return
    from django.conf import settings

    HyperionHttpProtocol.header_timeout = settings.SERVER_HEADER_TIMEOUT
    HyperionHttpProtocol.max_idle = settings.SERVER_MAX_IDLE_CONNECTIONS
    _settings_read = True
