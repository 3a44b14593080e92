"""The short-cuts that cut the fixed cost of every request (hyperion/README.md, "The floor of a request"): each
answers what Django's own code would. The CSP header of a policy without a nonce is built once, the Vary
header written without parsing, the message storage made only when a view adds or a page reads messages,
the response's headers read straight from their store, a body that came whole kept in a BytesIO, and the
server's protocol writes a response's head with its body. A browser sees the same headers, cookies and
bytes as without them."""

from __future__ import annotations

import asyncio
import gc
import weakref
from http.cookies import SimpleCookie

import pytest
from django.contrib import messages
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.utils.csp import CSP, build_policy
from django.views.decorators.csrf import csrf_exempt
from uvicorn.config import Config
from uvicorn.server import ServerState

from hyperion.handler import LoopBoundASGIHandler
from hyperion.httpprotocol import HyperionHttpProtocol
from hyperion.middleware import page_messages
from tests import support


async def _plain(request):
    return HttpResponse(b"plain")


async def _nonce(request):
    return HttpResponse(str(request._csp_nonce))  # a page with an inline script would print it so


async def _varies(request):
    response = HttpResponse(b"varies")
    response["Vary"] = "Accept-Encoding"
    return response


async def _flash(request):
    messages.success(request, "Saved.")
    return HttpResponse(b"flashed")


async def _show(request):
    flash = page_messages(request)  # as templates/base.html reads them: {% if flash %}{% for ... %}
    return HttpResponse(" | ".join(str(message) for message in flash) if flash else "no messages")


@csrf_exempt  # the body is what is checked here; CSRF has its own tests
async def _echo(request):
    return HttpResponse(f"{len(request.body)}:{request.POST.get('field', '')}")


urlpatterns = [path("plain/", _plain), path("nonce/", _nonce), path("varies/", _varies), path("flash/", _flash),
               path("show/", _show), path("echo/", _echo)]


@pytest.fixture
def handler(settings):
    settings.ROOT_URLCONF = __name__
    return LoopBoundASGIHandler()


async def request(handler, url: str, *, method: str = "GET", cookies: dict[str, str] | None = None,
                  body: list[bytes] | None = None, headers: dict[str, str] | None = None):
    """One request through the site's Django handler as uvicorn calls it; its status, headers (a list: every
    Set-Cookie kept) and body. ``body``: the request body, one ASGI message per item."""
    header_list = [(b"host", b"testserver"), *((name.lower().encode(), value.encode())
                                                for name, value in (headers or {}).items())]
    if cookies:
        header_list.append((b"cookie", "; ".join(f"{name}={value}" for name, value in cookies.items()).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": url, "raw_path": url.encode(), "query_string": b"", "root_path": "",
             "headers": header_list, "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    parts = list(body or [b""])
    incoming = [{"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
                for index, part in enumerate(parts)]
    sent: list[dict] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await handler(scope, receive, send)
    start = sent[0]
    headers_sent = [(name.decode().lower(), value.decode("latin1")) for name, value in start["headers"]]
    return start["status"], headers_sent, b"".join(message.get("body", b"") for message in sent[1:])


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key == name]


def set_cookies(headers) -> dict[str, str]:
    """Cookies set (value) or deleted ("" ) by the response."""
    found = {}
    for value in header(headers, "set-cookie"):
        cookie = SimpleCookie()
        cookie.load(value)
        found.update({name: morsel.value for name, morsel in cookie.items()})
    return found


# CSP: the header of a nonce-less policy is built once; a page's own nonce is in its own header.

async def test_the_csp_header_is_djangos_policy_and_a_page_that_uses_a_nonce_gets_its_own(handler, settings):
    for _ in range(2):
        _, headers, _ = await request(handler, "/plain/")
        assert header(headers, "content-security-policy") == [build_policy(settings.SECURE_CSP)]

    settings.SECURE_CSP = {**settings.SECURE_CSP, "script-src": [CSP.SELF, CSP.NONCE], "img-src": [CSP.SELF]}
    nonces = []
    for _ in range(2):
        _, headers, body = await request(handler, "/nonce/")
        nonces.append(body.decode())
        assert header(headers, "content-security-policy") == [build_policy(settings.SECURE_CSP, body.decode())]
    assert nonces[0] != nonces[1]
    _, headers, _ = await request(handler, "/plain/")  # the changed policy, with the sentinel dropped
    assert header(headers, "content-security-policy") == [build_policy(settings.SECURE_CSP)]
    policy = header(headers, "content-security-policy")[0]
    assert "nonce" not in policy and "data:" not in policy


async def test_vary_is_what_django_patch_vary_headers_writes(handler):
    for url in ("/plain/", "/varies/"):
        _, headers, _ = await request(handler, url)
        expected = HttpResponse()
        if url == "/varies/":
            expected["Vary"] = "Accept-Encoding"
        patch_vary_headers(expected, ("Accept-Language", "Cookie"))
        assert header(headers, "vary") == [expected["Vary"]]


# Messages: the storage is made only when used; the cookie comes and goes as with Django's middleware.

async def test_messages_cookie_is_set_shown_once_then_deleted_and_left_alone_by_pages_that_do_not_read_it(handler):
    _, headers, _ = await request(handler, "/plain/")
    assert "messages" not in set_cookies(headers)
    _, headers, _ = await request(handler, "/show/")
    assert "messages" not in set_cookies(headers)

    _, headers, _ = await request(handler, "/flash/")
    stored = set_cookies(headers)["messages"]
    assert stored

    # A page that reads no messages keeps them for the next one: the cookie is neither set again nor deleted.
    _, headers, body = await request(handler, "/plain/", cookies={"messages": stored})
    assert body == b"plain" and "messages" not in set_cookies(headers)

    _, headers, body = await request(handler, "/show/", cookies={"messages": stored})
    assert body == b"Saved." and set_cookies(headers)["messages"] == ""  # shown, then deleted

    _, headers, body = await request(handler, "/show/")
    assert body == b"no messages" and "messages" not in set_cookies(headers)


# The handler: the response's headers and the request's body are Django's.

async def test_the_handler_sends_a_response_exactly_as_djangos_send_response():
    def response():
        made = HttpResponse(b"x" * (ASGIHandler.chunk_size + 10), content_type="text/plain; charset=utf-8")
        made["Content-Disposition"] = 'attachment; filename="caf\u00e9.csv"'  # latin-1, as Django allows
        made["X-Bytes"] = b"bytes value"
        made.set_cookie("kept", "value", httponly=True, samesite="Lax")
        made.delete_cookie("gone")
        return made

    ours: list[dict] = []
    djangos: list[dict] = []
    await LoopBoundASGIHandler.send_response(LoopBoundASGIHandler(), response(), _appending(ours))
    await ASGIHandler.send_response(ASGIHandler(), response(), _appending(djangos))
    assert ours == djangos and len(ours) == 3  # the head and the body in two chunks

    ours.clear()
    djangos.clear()
    async def parts():
        yield b"a"
        yield b"b"

    await LoopBoundASGIHandler.send_response(LoopBoundASGIHandler(), StreamingHttpResponse(parts()), _appending(ours))
    await ASGIHandler.send_response(ASGIHandler(), StreamingHttpResponse(parts()), _appending(djangos))
    assert ours == djangos


def _appending(messages_sent: list[dict]):
    async def send(message):
        messages_sent.append(message)
    return send


@pytest.mark.parametrize("parts", [[b"field=short"], [b"field=in", b"-three", b"-parts"], [b"field=" + b"x" * 40]])
async def test_a_request_body_reaches_the_view_whole_however_it_arrived(handler, settings, parts):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 30  # the last body is larger: it goes through Django's spooled file
    body = b"".join(parts)
    status, _, answer = await request(handler, "/echo/", method="POST", body=parts,
                                      headers={"content-type": "application/x-www-form-urlencoded",
                                               "content-length": str(len(body))})
    assert (status, answer) == (200, f"{len(body)}:{body[6:].decode()}".encode())


# The server's protocol: a response's head goes out with its body; a stream's head does not wait for it.

class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, *args, **kwargs) -> None:
        pass


async def _served(app, raw_request: bytes) -> tuple[_Transport, HyperionHttpProtocol]:
    config = Config(app=app, proxy_headers=False, log_level="warning")
    protocol = HyperionHttpProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(raw_request)
    return transport, protocol


async def test_a_whole_response_leaves_in_one_write_with_its_head():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"hello"})

    transport, protocol = await _served(app, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await support.until(lambda: protocol.cycle.response_complete, what="the response sent")
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-type: text/plain" in head
    assert body == b"5\r\nhello\r\n0\r\n\r\n"
    protocol.connection_lost(None)


async def test_an_answered_requests_objects_are_freed_at_once_not_left_to_the_garbage_collector():
    """Once a request is answered, its cycle (scope, headers, transport wrapper) is freed by reference
    counting alone: kept for the next full garbage collection, 1,000 clients left ~1,300 of them waiting at
    any time, megabytes of the worker's memory. The collector is off here: only reference counting frees."""
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"hello"})

    gc.collect()
    gc.disable()
    try:
        transport, protocol = await _served(app, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await support.until(lambda: protocol.cycle.response_complete, what="the first response sent")
        first = weakref.ref(protocol.cycle)
        protocol.data_received(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")  # the same kept-alive connection
        await support.until(lambda: protocol.cycle.scope["path"] == "/next" and protocol.cycle.response_complete,
                            what="the second response sent")
        await support.until(lambda: first() is None, what="the first request's cycle freed")
        protocol.connection_lost(None)
    finally:
        gc.enable()
    assert len(transport.writes) == 2


async def test_a_streams_head_is_sent_before_its_first_event_and_a_head_request_gets_its_head():
    first_event = asyncio.Event()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        if scope["method"] == "GET":
            await first_event.wait()
            await send({"type": "http.response.body", "body": b"data: 1\n\n"})
        else:
            await send({"type": "http.response.body", "body": b""})

    transport, protocol = await _served(app, b"GET /seats/ HTTP/1.1\r\nHost: x\r\n\r\n")
    await support.until(lambda: transport.writes, what="the stream's head sent")
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and transport.writes[0].endswith(b"\r\n\r\n")
    first_event.set()
    await support.until(lambda: len(transport.writes) == 2, what="the first event sent")
    assert transport.writes[1].startswith(b"9\r\ndata: 1")
    protocol.connection_lost(None)

    transport, protocol = await _served(app, b"HEAD /seats/ HTTP/1.1\r\nHost: x\r\n\r\n")
    await support.until(lambda: protocol.cycle.response_complete and transport.writes, what="the head sent")
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 200 OK\r\n")
    protocol.connection_lost(None)


def test_caches_are_still_closed_after_each_request_when_a_backend_has_something_to_close(settings):
    from django.core import signals
    from django.core.cache import close_caches

    def connected() -> bool:
        return any(entry[1]() is close_caches for entry in signals.request_finished.receivers)

    signals.request_finished.connect(close_caches)
    try:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache"}}
        LoopBoundASGIHandler()
        assert connected()
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        LoopBoundASGIHandler()  # its close does nothing: the receiver would only cost time
        assert not connected()
    finally:
        signals.request_finished.connect(close_caches)  # as Django left it for the other tests
