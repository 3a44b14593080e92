"""Public pages for visitors without a session, answered from memory before Django runs.

A visitor who sends no cookie (or only the language switch's) gets, for a given address, language, host and
scheme, the same page as every other such visitor: the home list, the calendar, an event's page. Django
costs ~0.35 ms of CPU per request before any page work (its handler, the middleware; bench/README.md),
while answering stored bytes costs ~0.04 ms, so the ASGI app keeps the last response of such pages and
answers it again until what it shows changes (hyperion/pagecache.py, the store: tags, the change NOTIFY,
the grace period, expiry). This is the micro-cache a reverse proxy would keep, in the process, where it hears of
every change at once. Django's own cache middleware would still pay the handler and its thread hops.

What makes it safe:
- Only pages whose view says so are kept (``pagecache.allow``): the view knows the page is the same for everyone
  without a session, which tags it shows and when it goes out of date.
- Only GET requests without a body and without any cookie but the language one take part, and only a 200
  that sets no cookie is kept: a page that would hand out a CSRF token, a message or a session is never
  stored. A request with a session (a logged-in student) never gets a stored page.
- The key holds every input such a page depends on: path and query string, the language Django would
  choose (Django's own ``get_language_from_request``), the Host header (so a host Django refuses is never
  answered from memory) and the scheme (HSTS, the HTTPS redirect).
- Concurrent misses of one page wait for the first one's render (bounded), instead of all rendering it.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from types import SimpleNamespace

from django.conf import settings
from django.http.cookie import parse_cookie
from django.utils import translation

from hyperion import pagecache

_LANGUAGES_MAX = 256
# How long a miss waits for the same page's render in progress (which may itself be waiting for its turn in
# the admission queue) before it renders the page too.
_FILL_WAIT = 10.0
# How long past its due time a stored page may still be served while it is being rendered again.
_STALE_SERVE = 10.0


class StoredPage:
    """A response kept gzip-compressed (a third of the memory for the site's HTML), sent as it is to clients
    that accept gzip (every browser) and decompressed for the others."""

    __slots__ = ("status", "plain_headers", "gzip_headers", "gzipped")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.gzipped = gzip.compress(body, compresslevel=6, mtime=0)
        headers = [_vary_on_encoding(name, value) for name, value in headers if name.lower() != b"content-length"]
        self.plain_headers = _shared([*headers, (b"content-length", str(len(body)).encode())])
        self.gzip_headers = _shared([*headers, (b"content-encoding", b"gzip"),
                                     (b"content-length", str(len(self.gzipped)).encode())])

    @property
    def size(self) -> int:
        return len(self.gzipped) + 300  # headers are shared between pages; the objects around them

    async def send(self, send, *, gzip_accepted: bool) -> None:
        if gzip_accepted:
            headers, body = self.gzip_headers, self.gzipped
        else:
            headers, body = self.plain_headers, zlib.decompress(self.gzipped, _GZIP_WBITS)
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_GZIP_WBITS = 16 + zlib.MAX_WBITS
_HEADERS_MAX = 4_096
_headers: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}


def _shared(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The same header (CSP, Vary, X-Frame-Options...) stored once for all pages, not once per page."""
    if len(_headers) >= _HEADERS_MAX:
        _headers.clear()
    return [_headers.setdefault(header, header) for header in headers]


def _vary_on_encoding(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if name.lower() == b"vary" and b"accept-encoding" not in value.lower():
        return name, value + b", Accept-Encoding"
    return name, value


def accepts_gzip(scope) -> bool:
    """Whether the request's Accept-Encoding admits gzip (``gzip`` or ``*``, not with ``q=0``)."""
    accept_encoding = next((value for name, value in scope["headers"] if name == b"accept-encoding"), b"")
    for item in accept_encoding.lower().split(b","):
        coding, _, parameters = item.partition(b";")
        if coding.strip() in (b"gzip", b"*"):
            quality = parameters.strip()
            return not (quality.startswith(b"q=") and quality[2:].strip(b" 0.") == b"")
    return False


class Ticket:
    """Carried in the ASGI scope of a request that may be stored; the view fills it in (``pagecache.allow``)."""

    __slots__ = ("key", "version", "allowed", "tags", "expires_at", "status", "headers", "chunks", "complete",
                 "waiting")

    def __init__(self, key: tuple) -> None:
        self.key = key
        self.waiting: asyncio.Future | None = None  # the other misses of this page wait for this one
        self.version = pagecache.version()  # taken again when the request enters Django (see admitted)
        self.allowed = False
        self.tags: tuple = ()
        self.expires_at: float | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.complete = False

    def admitted(self) -> None:
        """The request leaves the admission queue: its data is read from now on, not from its arrival (a
        page rendered after seconds in the queue would count every change of those seconds against it)."""
        self.version = pagecache.version()

    def recording(self, send, on_refused):
        """``send``, keeping a copy of a page the view allowed; ``on_refused`` runs as soon as the response
        starts without that permission (a stream, an error page, a redirect), so nothing waits for it."""

        async def send_and_record(message):
            kind = message["type"]
            if kind == "http.response.start":
                self.status, self.headers = message["status"], list(message.get("headers", ()))
                if not self.allowed or self.status != 200:
                    self.allowed = False
                    on_refused()
            elif kind == "http.response.body" and self.allowed:
                self.chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self.complete = True
            await send(message)

        return send_and_record

    def stored_page(self) -> StoredPage | None:
        if not (self.allowed and self.complete and self.status == 200):
            return None
        if any(name.lower() in (b"set-cookie", b"content-encoding") for name, _ in self.headers):
            return None
        return StoredPage(self.status, self.headers, b"".join(self.chunks))


class PublicPages:
    def __init__(self) -> None:
        self._languages: dict[tuple[str | None, bytes], str] = {}
        self._filling: dict[tuple, asyncio.Future] = {}

    def key(self, scope) -> tuple | None:
        """The key of a request that may be answered from memory, or None."""
        if scope["method"] != "GET" or settings.PAGE_CACHE_SECONDS <= 0:
            return None
        host = accept = b""
        language_cookie = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookies = parse_cookie(value.decode("latin-1"))
                if set(cookies) - {settings.LANGUAGE_COOKIE_NAME}:
                    return None  # a session, a CSRF token, messages, anything else: Django answers
                language_cookie = cookies.get(settings.LANGUAGE_COOKIE_NAME, language_cookie)
            elif name == b"host":
                host = value
            elif name == b"accept-language":
                accept = value
            elif name in (b"authorization", b"transfer-encoding") or (name == b"content-length" and value != b"0"):
                return None
            elif name == b"x-forwarded-proto":
                host += b"|" + value  # the scheme Django believes, behind a proxy (SECURE_PROXY_SSL_HEADER)
        return (scope["path"], scope["query_string"], host, scope["scheme"], self._language(language_cookie, accept))

    def _language(self, cookie: str | None, accept: bytes) -> str:
        """The language Django's LanguageMiddleware will choose for these headers (its own function)."""
        key = (cookie, accept)
        language = self._languages.get(key)
        if language is None:
            probe = SimpleNamespace(COOKIES={} if cookie is None else {settings.LANGUAGE_COOKIE_NAME: cookie},
                                    META={"HTTP_ACCEPT_LANGUAGE": accept.decode("latin-1")})
            language = translation.get_language_from_request(probe)
            if len(self._languages) >= _LANGUAGES_MAX:
                self._languages.clear()
            self._languages[key] = language
        return language

    async def lookup(self, key: tuple) -> tuple[StoredPage | None, bool]:
        """``(page, first)``: the stored page for ``key``, or None for this request to render it, then
        ``first`` true when it should go ahead of the admission queue.

        While a page is rendered again, the other visitors get the previous one (for at most
        ``_STALE_SERVE`` seconds past its due time): a registration every few milliseconds would otherwise
        send every visitor of the home page to wait for its next render, a wait that under load includes the
        admission queue. The request that renders it again goes first. With nothing stored yet, they wait for
        the render in progress instead; if that render leaves nothing to serve (a page that is never stored,
        such as a personal feed, or one that changed while it was rendered), they go first too: they have
        waited their turn already, and at 1,000 clients a second wait at the back of the queue took them past
        ten seconds."""
        found = pagecache.lookup(("page", *key), stale_for=_STALE_SERVE)
        if found is not None:
            page, fresh = found
            if fresh or key in self._filling:
                return page, False
            return None, True
        filling = self._filling.get(key)
        if filling is None:
            return None, False
        try:
            await asyncio.wait_for(asyncio.shield(filling), _FILL_WAIT)
        except TimeoutError:
            return None, True
        found = pagecache.lookup(("page", *key), stale_for=0.0)
        return (None, True) if found is None else (found[0], False)

    def filling(self, key: tuple) -> Ticket:
        """This request renders the page for ``key``: others that miss meanwhile wait for it."""
        ticket = Ticket(key)
        if key not in self._filling:
            ticket.waiting = self._filling[key] = asyncio.get_running_loop().create_future()
        return ticket

    def recording(self, ticket: Ticket, send):
        return ticket.recording(send, lambda: self._release(ticket))

    def filled(self, ticket: Ticket) -> None:
        """The request of ``ticket`` is over (answered, failed or cancelled): keep its page if it may be kept."""
        page = ticket.stored_page()
        if page is not None:
            pagecache.put(("page", *ticket.key), page, version=ticket.version, tags=ticket.tags, size=page.size,
                          expires_at=ticket.expires_at)
        self._release(ticket)

    def _release(self, ticket: Ticket) -> None:
        waiting, ticket.waiting = ticket.waiting, None
        if waiting is not None:
            if self._filling.get(ticket.key) is waiting:
                del self._filling[ticket.key]
            waiting.set_result(None)
