"""A request's body read before its turn in the admission queue (hyperion/app.py): the declared length, the
whole body within SERVER_BODY_TIMEOUT and MAX_REQUEST_BODY, the 408 and 413 answers, and the ``receive``
that hands Django the body read beforehand."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from functools import cache

from django.conf import settings

from hyperion.staticfiles import security_headers

Receive = Callable[[], Awaitable[dict]]  # an ASGI receive


def body_limit(scope) -> int:
    """The largest body this request may send: MAX_UPLOAD_BODY on the image upload forms' paths, else
    MAX_REQUEST_BODY."""
    if any(pattern.match(scope["path"]) for pattern in _upload_paths(tuple(settings.UPLOAD_PATHS))):
        return settings.MAX_UPLOAD_BODY
    return settings.MAX_REQUEST_BODY


@cache
def _upload_paths(patterns: tuple[str, ...]) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(pattern) for pattern in patterns)


def may_be_large(scope, declared: int) -> bool:
    """The body may be larger than MAX_REQUEST_BODY: declared so, or chunked (length unknown) to a path that
    allows more (an image upload form)."""
    if declared > settings.MAX_REQUEST_BODY:
        return True
    return declared < 0 and body_limit(scope) > settings.MAX_REQUEST_BODY


class LargeBodies:
    """How many bodies larger than MAX_REQUEST_BODY this worker holds at once, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0

    def take(self) -> bool:
        if self.held >= self.limit:
            return False
        self.held += 1
        return True

    def give_back(self) -> None:
        self.held -= 1


async def too_many_large_bodies(scope, send) -> None:
    """503 before reading the body: other uploads are being received. The site's busy page with Retry-After,
    like every 503 the server gives; the connection is closed (its body unread)."""
    from hyperion.app import send_busy_page  # app.py imports this module: imported when first needed

    await send_busy_page(scope, send, close=True)


def declared_length(scope) -> int:
    """The body's Content-Length; -1 for a chunked body (length unknown), 0 without a body."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
        if name == b"transfer-encoding":
            return -1
    return 0


async def body_read_first(scope, receive, send) -> Replaying | None:
    """Read the request's whole body, within SERVER_BODY_TIMEOUT seconds and ``body_limit`` bytes, and return
    a ``receive`` that gives Django that body in one message, then hands over to the connection's own
    (which tells of the client leaving while a stream is sent); None once answered (408, 413) or the client
    gone.

    Read before the request's admission turn: a turn held while the body trickles in (or never comes) is a
    turn no page gets, and SERVER_MAX_IN_FLIGHT clients that declare a Content-Length and send nothing would
    otherwise hold every turn while every page and /healthz waits SERVER_QUEUE_TIMEOUT for a 503. The size
    limit also covers chunked bodies, which declare no length: Django would otherwise spool all of it to disk
    first."""
    chunks: list[bytes] = []
    received, limit = 0, body_limit(scope)
    try:
        async with asyncio.timeout(settings.SERVER_BODY_TIMEOUT):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None  # the client left
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    break
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return Replaying(b"".join(chunks), receive)
    except TimeoutError:
        await _plain_answer(scope, send, 408, b"Request body not received in time.")
        return None
    await drain(receive)
    await payload_too_large(scope, send)
    return None


class Replaying:
    """``receive`` for Django: the body read beforehand (also kept as ``body``), then the connection's own
    messages."""

    __slots__ = ("body", "pending", "receive")

    def __init__(self, body: bytes, receive: Receive) -> None:
        self.body = body
        self.receive = receive
        self.pending: dict | None = {"type": "http.request", "body": body, "more_body": False}

    async def __call__(self) -> dict:
        if self.pending is None:
            return await self.receive()
        message, self.pending = self.pending, None
        return message



async def drain(receive, budget: int = 8 * 1024 * 1024) -> None:
    """Read and drop what the client is still sending (up to ``budget``), so that it can read our 413
    instead of seeing its connection reset mid-upload; past the budget or SERVER_BODY_TIMEOUT the connection
    is simply closed."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(settings.SERVER_BODY_TIMEOUT):
            while budget > 0:
                message = await receive()
                if message["type"] != "http.request":
                    return
                budget -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


async def payload_too_large(scope, send) -> None:
    await _plain_answer(scope, send, 413, b"Request body too large.")


async def _plain_answer(scope, send, status: int, text: bytes) -> None:
    """A short plain-text answer given before Django, that closes the connection."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(text)).encode()), (b"connection", b"close"),
                            *security_headers(scope)]})
    await send({"type": "http.response.body", "body": text})
