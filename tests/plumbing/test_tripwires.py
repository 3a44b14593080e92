"""Tripwires: the framework internals the plumbing relies on, checked against the installed versions.

Each test guards one private name, undocumented structure or copied function of Django, uvicorn,
SQLAlchemy, asyncpg or Jinja2 (hyperion/README.md lists them). A framework upgrade that changes the thing
relied on fails here, naming the file of ours to revisit, instead of failing quietly in production (a
check that no longer runs, a signal receiver left connected, a copied function that drifted from the
original). For a copied function the upstream source is hashed: when the hash changes, compare the
upstream function with our copy, port what changed, then update the hash here.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def source_hash(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


# hyperion/handler.py ---------------------------------------------------------------------------------------


def test_asgi_handler_handle_is_the_version_copied():
    from django.core.handlers.asgi import ASGIHandler

    assert source_hash(ASGIHandler.handle) == "c91f27c7fcdc3fff", (
        "django.core.handlers.asgi.ASGIHandler.handle changed upstream: revisit hyperion/handler.py "
        "(LoopBoundASGIHandler.handle is a copy of Django 6.1.3's)")
    assert source_hash(ASGIHandler.__call__) == "f756809e9c9308dc", (
        "django.core.handlers.asgi.ASGIHandler.__call__ changed upstream: revisit hyperion/handler.py "
        "(LoopBoundASGIHandler.__call__ replaces it without the per-request ThreadSensitiveContext)")


def test_asgi_handler_helpers_the_copy_calls_are_there():
    from django.core.handlers import asgi

    expected = {"read_body": ["self", "receive"], "create_request": ["self", "scope", "body_file"],
                "run_get_response": ["self", "request"], "send_response": ["self", "response", "send"],
                "listen_for_disconnect": ["self", "receive"]}
    for name, arguments in expected.items():
        method = getattr(asgi.ASGIHandler, name, None)
        assert method is not None and parameters(method) == arguments, (
            f"django.core.handlers.asgi.ASGIHandler.{name} changed upstream: revisit hyperion/handler.py")
    assert parameters(asgi.get_script_prefix) == ["scope"], (
        "django.core.handlers.asgi.get_script_prefix changed upstream: revisit hyperion/handler.py")


def test_get_response_copies_match_the_versions_copied():
    """get_response_async and _get_response_async (split in two with _view_response) are copies of Django
    6.1.3's with the error answers kept on the loop."""
    from django.core.handlers.base import BaseHandler

    assert source_hash(BaseHandler.get_response_async) == "ad82c920df0cebbb", (
        "django.core.handlers.base.BaseHandler.get_response_async changed upstream: revisit hyperion/handler.py "
        "(LoopBoundASGIHandler.get_response_async is a copy of Django 6.1.3's)")
    assert source_hash(BaseHandler._get_response_async) == "064b55bfd55fc38d", (
        "django.core.handlers.base.BaseHandler._get_response_async changed upstream: revisit hyperion/handler.py "
        "(LoopBoundASGIHandler._get_response_async and _view_response are a copy of Django 6.1.3's)")


def test_get_response_copies_find_the_handler_state_they_read():
    """The copies read the middleware lists load_middleware builds, call the base handler's helpers, and
    append to a response's _resource_closers."""
    from django.core.handlers.base import BaseHandler
    from django.http import HttpResponse

    from hyperion.handler import LoopBoundASGIHandler

    handler = LoopBoundASGIHandler()
    assert callable(handler._middleware_chain), (
        "BaseHandler.load_middleware no longer sets _middleware_chain: revisit hyperion/handler.py "
        "(get_response_async)")
    for name in ("_view_middleware", "_exception_middleware", "_template_response_middleware"):
        assert isinstance(getattr(handler, name, None), list), (
            f"BaseHandler.load_middleware no longer builds the list {name}: revisit hyperion/handler.py "
            "(_view_response)")
    assert isinstance(HttpResponse()._resource_closers, list), (
        "HttpResponseBase._resource_closers changed: revisit hyperion/handler.py (get_response_async)")
    expected = {"resolve_request": ["self", "request"], "make_view_atomic": ["self", "view"],
                "check_response": ["self", "response", "callback", "name"],
                "process_exception_by_middleware": ["self", "exception", "request"]}
    for name, arguments in expected.items():
        method = getattr(BaseHandler, name, None)
        assert method is not None and parameters(method) == arguments, (
            f"django.core.handlers.base.BaseHandler.{name} changed upstream: revisit hyperion/handler.py "
            "(_view_response)")


def test_send_response_and_read_body_short_cuts_follow_the_versions_read():
    """LoopBoundASGIHandler.send_response is Django's for a whole response with the headers read from the
    ResponseHeaders store ((name as given, value), both str, checked when set); read_body answers a body that
    came whole in one message with a BytesIO, else calls Django's with that message replayed."""
    from django.core.handlers.asgi import ASGIHandler
    from django.http import HttpResponse

    versions_read = {ASGIHandler.send_response: ("d91e83d2c6859eda", "a copy of Django 6.1.3's, whole responses"),
                     ASGIHandler.read_body: ("88b4e284fc829700", "the short-cut for a body that came whole")}
    for method, (expected, what) in versions_read.items():
        assert source_hash(method) == expected, (
            f"django.core.handlers.asgi.ASGIHandler.{method.__name__} changed upstream: revisit hyperion/handler.py "
            f"(LoopBoundASGIHandler.{method.__name__}: {what})")
    response = HttpResponse(b"", headers={"X-Bytes": b"v"})
    response["Content-Disposition"] = "caf\u00e9"
    assert sorted(response.headers._store.values()) == [
        ("Content-Disposition", "caf\u00e9"), ("Content-Type", "text/html; charset=utf-8"), ("X-Bytes", "v")], (
        "ResponseHeaders no longer keeps (name, str value) in _store: revisit hyperion/handler.py (send_response)")


def test_django_db_request_receivers_are_the_ones_disconnected():
    """disconnect_orm_request_signals disconnects these by identity: renamed, they would stay connected
    (a thread hop per request) and disconnect() would say nothing."""
    from django import db

    source = inspect.getsource(db)
    for line in ("signals.request_started.connect(reset_queries)",
                 "signals.request_started.connect(close_old_connections)",
                 "signals.request_finished.connect(close_old_connections)"):
        assert line in source, (
            f"django.db no longer runs {line!r}: revisit hyperion/handler.py (disconnect_orm_request_signals)")


# hyperion/db.py --------------------------------------------------------------------------------------------


def test_asyncpg_adapter_exposes_the_driver_connection_and_its_closed_state():
    """The pool's checkout hook asks the asyncpg connection under SQLAlchemy's adapter whether the server
    closed it (no round trip)."""
    import asyncpg
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
    from sqlalchemy.engine.interfaces import AdaptedConnection

    assert issubclass(AsyncAdapt_asyncpg_connection, AdaptedConnection), (
        "SQLAlchemy's asyncpg adapter is no longer an AdaptedConnection: revisit hyperion/db.py "
        "(_discard_closed_connection reads driver_connection)")
    assert isinstance(inspect.getattr_static(AdaptedConnection, "driver_connection"), property)
    assert parameters(asyncpg.Connection.is_closed) == ["self"], (
        "asyncpg.Connection.is_closed changed: revisit hyperion/db.py (_discard_closed_connection)")


@pytest.mark.postgres_only
async def test_checked_out_connection_is_an_asyncpg_connection_that_knows_it_is_open(database_url):
    import asyncpg
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            adapter = (await connection.get_raw_connection()).dbapi_connection
            assert isinstance(adapter.driver_connection, asyncpg.Connection), (
                "the asyncpg adapter's driver_connection is no asyncpg.Connection: revisit hyperion/db.py")
            assert adapter.driver_connection.is_closed() is False
    finally:
        await engine.dispose()


# hyperion/checks.py ----------------------------------------------------------------------------------------


def test_deploy_checks_gated_on_middleware_are_the_ones_rerun():
    """check_security_through_async_middleware patches Django's private helpers that look the security,
    frame and CSRF middleware up by dotted path, and reruns the checks they gate."""
    from django.core.checks.security import base, csrf

    from hyperion.checks import GATED_CHECKS

    helpers = {base: ["_security_middleware", "_xframe_middleware"], csrf: ["_csrf_middleware"]}
    for module, names in helpers.items():
        for name in names:
            helper = getattr(module, name, None)
            assert callable(helper) and parameters(helper) == [], (
                f"{module.__name__}.{name} changed upstream: revisit hyperion/checks.py")
    # Every Django check that asks those helpers, except the three that report W001-W003 (silenced in
    # settings: our wrappers stand for the middleware they look for).
    reporting = {"check_security_middleware", "check_xframe_options_middleware", "check_csrf_middleware"}
    gated = {name for module, names in helpers.items() for name, check in vars(module).items()
             if name.startswith("check_") and callable(check)
             and any(f"{helper}()" in inspect.getsource(check) for helper in names)}
    assert reporting <= gated, (
        "Django's W001-W003 checks changed: revisit hyperion/checks.py and SILENCED_SYSTEM_CHECKS")
    assert {check.__name__ for check in GATED_CHECKS} == gated - reporting, (
        "Django's deploy checks gated on its security/CSRF middleware changed: revisit hyperion/checks.py "
        "(GATED_CHECKS)")


# hyperion/jinja.py -----------------------------------------------------------------------------------------


def test_url_reverse_shortcut_matches_the_resolver_it_copies():
    """url() reads the resolver's reverse_dict and repeats _reverse_with_prefix's steps with a compiled regex."""
    from django.urls import get_resolver, reverse
    from django.urls.resolvers import URLResolver

    from hyperion.jinja import url

    assert source_hash(URLResolver._reverse_with_prefix) == "947b252a39a3a018", (
        "django.urls.resolvers.URLResolver._reverse_with_prefix changed upstream: revisit hyperion/jinja.py "
        "(_route and _reverse_positional repeat its steps)")
    possibilities = get_resolver().reverse_dict.getlist("event_detail")
    assert len(possibilities) == 1 and len(possibilities[0]) == 4, (
        "URLResolver.reverse_dict entries changed shape: revisit hyperion/jinja.py (_route)")
    (result, params), = possibilities[0][0]
    assert isinstance(result, str) and params == ["slug"] and isinstance(possibilities[0][1], str)
    assert isinstance(possibilities[0][2], dict) and "slug" in possibilities[0][3]
    for name, args in [("event_detail", ("soiree-jeux",)), ("home", ()), ("event_ics", ("a-b",))]:
        assert url(name, *args) == reverse(name, args=args or None)


def test_template_gettext_follows_django_and_jinja():
    """_template_i18n asks trans_real.translation(language)'s catalog directly, normalising line ends as
    Django's gettext does, with the contract of Jinja's newstyle gettext."""
    import jinja2.ext
    from django.utils.translation import trans_real

    assert parameters(trans_real.translation) == ["language"], (
        "django.utils.translation.trans_real.translation changed: revisit hyperion/jinja.py (_template_i18n)")
    catalog = trans_real.translation("fr")
    assert callable(catalog.gettext) and callable(catalog.ngettext)
    assert source_hash(trans_real.gettext) == "b4231fcbe3e5f43e", (
        "django.utils.translation.trans_real.gettext changed upstream: revisit hyperion/jinja.py "
        "(_template_i18n's gettext repeats it)")
    assert source_hash(jinja2.ext._make_new_gettext) == "fae00437e53e3604", (
        "jinja2.ext._make_new_gettext changed upstream: revisit hyperion/jinja.py (_template_i18n's gettext)")
    assert source_hash(jinja2.ext._make_new_ngettext) == "5218662a6061743a", (
        "jinja2.ext._make_new_ngettext changed upstream: revisit hyperion/jinja.py (_template_i18n's ngettext)")


def test_context_processors_still_override_the_backends_csrf_objects():
    """request_context replaces the Jinja2 backend's lazy csrf_token/csrf_input: that works only while the
    backend applies the context processors after putting its own."""
    from django.template.backends.jinja2 import Template

    assert source_hash(Template.render) == "a173ab0c7981421c", (
        "django.template.backends.jinja2.Template.render changed upstream: revisit hyperion/jinja.py "
        "(request_context's csrf_token and csrf_input)")


def test_url_quoting_helpers_are_there():
    from django.utils import http

    assert isinstance(getattr(http, "RFC3986_SUBDELIMS", None), str) and callable(
        getattr(http, "escape_leading_slashes", None)), (
        "django.utils.http.RFC3986_SUBDELIMS or escape_leading_slashes changed: revisit hyperion/jinja.py (_checked)")


# hyperion/middleware.py ------------------------------------------------------------------------------------


def test_message_middleware_keeps_its_storage_on_request_messages(rf):
    """CsrfAndMessagesMiddleware deletes request._messages after the response (a reference cycle)."""
    from django.contrib.messages import get_messages
    from django.contrib.messages.middleware import MessageMiddleware

    request = rf.get("/")
    MessageMiddleware(lambda request: None).process_request(request)
    assert hasattr(request, "_messages") and get_messages(request) is request._messages, (
        "MessageMiddleware no longer stores the messages on request._messages: revisit hyperion/middleware.py "
        "(CsrfAndMessagesMiddleware's del request._messages)")


def test_lazy_message_storage_is_made_on_first_use_and_kept_in_wrapped(rf):
    """CsrfAndMessagesMiddleware and page_messages tell a storage never made by LazyMessages' _wrapped being
    Django's ``empty`` sentinel, and hand Django the storage made from _wrapped: both are LazyObject's
    internals, not its documented surface."""
    from django.contrib.messages.storage.base import BaseStorage
    from django.utils.functional import empty

    from hyperion.middleware import LazyMessages

    request = rf.get("/")
    storage = LazyMessages(request)  # as CsrfAndMessagesMiddleware.__call__ builds it
    assert type(storage) is LazyMessages and storage._wrapped is empty, (
        "a fresh SimpleLazyObject no longer holds django.utils.functional.empty in _wrapped: revisit "
        "hyperion/middleware.py (CsrfAndMessagesMiddleware.__call__ and page_messages)")
    list(storage)
    assert isinstance(storage._wrapped, BaseStorage), (
        "using a SimpleLazyObject no longer puts the object made in _wrapped: revisit hyperion/middleware.py "
        "(CsrfAndMessagesMiddleware.__call__ hands Django storage._wrapped)")


def test_the_middleware_short_cuts_follow_the_versions_read():
    """SecurityHeadersMiddleware.content_security_policy is a copy of Django's CSP process_response (with a
    nonce-less policy's header built once); CsrfAndMessagesMiddleware puts the storage Django's
    process_request would make on request._messages, lazily, and skips Django's process_response when it was
    never made (update stores nothing for a storage neither used nor added to); page_messages skips making
    it when the cookie storage would find no cookie."""
    from django.contrib.messages.middleware import MessageMiddleware
    from django.contrib.messages.storage.base import BaseStorage
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.middleware.csp import ContentSecurityPolicyMiddleware

    assert source_hash(ContentSecurityPolicyMiddleware.process_response) == "1be74a3834c7ceb1", (
        "Django's ContentSecurityPolicyMiddleware.process_response changed: revisit hyperion/middleware.py "
        "(SecurityHeadersMiddleware.content_security_policy is a copy of Django 6.1.3's)")
    assert source_hash(MessageMiddleware.process_request) == "7f4834ba26ee0583", (
        "Django's MessageMiddleware.process_request changed: revisit hyperion/middleware.py (LazyMessages)")
    assert source_hash(MessageMiddleware.process_response) == "04469c9493c90e26", (
        "Django's MessageMiddleware.process_response changed: revisit hyperion/middleware.py "
        "(CsrfAndMessagesMiddleware skips it for a storage never made)")
    assert source_hash(BaseStorage.update) == "3db9589128339b47", (
        "Django's BaseStorage.update changed: revisit hyperion/middleware.py (a storage never made stores nothing)")
    assert source_hash(CookieStorage._get) == "f846318e67c4b5fa", (
        "Django's CookieStorage._get changed: revisit hyperion/middleware.py (page_messages: no cookie, no message)")


def test_the_quick_lottery_entries_read_what_csrf_and_messages_decide_by():
    """events/views/quick.py sends an entrant the answer Django gave an earlier one, and leaves to Django any
    request whose answer would set the CSRF cookie (Django marks it in META["CSRF_COOKIE_NEEDS_UPDATE"],
    which its process_response reads) or merge an earlier message (the messages cookie's name)."""
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.middleware.csrf import CsrfViewMiddleware

    assert "CSRF_COOKIE_NEEDS_UPDATE" in inspect.getsource(CsrfViewMiddleware.process_response), (
        "Django's CSRF middleware no longer decides the cookie by META['CSRF_COOKIE_NEEDS_UPDATE']: revisit "
        "events/views/quick.py (an answer that sets the CSRF cookie must not be replayed)")
    assert CookieStorage.cookie_name == "messages" and "self.cookie_name" in inspect.getsource(CookieStorage._get), (
        "Django's cookie message storage changed its cookie: revisit events/views/quick.py")


def test_wrapped_middleware_have_the_hooks_the_wrappers_call():
    """The async wrappers call the hooks of Django's middleware one by one: a hook Django adds would be
    skipped."""
    from django.contrib.messages.middleware import MessageMiddleware
    from django.middleware.clickjacking import XFrameOptionsMiddleware
    from django.middleware.csp import ContentSecurityPolicyMiddleware
    from django.middleware.csrf import CsrfViewMiddleware
    from django.middleware.security import SecurityMiddleware

    hooks = ("process_request", "process_view", "process_response", "process_exception",
             "process_template_response")
    expected = {SecurityMiddleware: {"process_request", "process_response"},
                XFrameOptionsMiddleware: {"process_response"},
                ContentSecurityPolicyMiddleware: {"process_request", "process_response"},
                CsrfViewMiddleware: {"process_request", "process_view", "process_response"},
                MessageMiddleware: {"process_request", "process_response"}}
    for middleware, wrapped in expected.items():
        assert {hook for hook in hooks if hasattr(middleware, hook)} == wrapped, (
            f"{middleware.__module__}.{middleware.__name__}'s hooks changed: revisit hyperion/middleware.py")
        for hook in wrapped:
            assert not inspect.iscoroutinefunction(getattr(middleware, hook)), (
                f"{middleware.__name__}.{hook} is async now: revisit hyperion/middleware.py")


# hyperion/httpprotocol.py ----------------------------------------------------------------------------------


async def test_http_protocol_state_the_subclass_reads_is_set_by_uvicorns_init():
    """HyperionHttpProtocol calls uvicorn's __init__ with its arguments, then reads and resets
    limit_concurrency, counts connections and tasks (the server's shared sets), and reads app, cycle,
    pipeline, loop, logger, transport, server_state.default_headers, scope and its cycle's scope."""
    import asyncio
    import weakref
    from collections import deque

    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    assert parameters(HttpToolsProtocol.__init__) == ["self", "config", "server_state", "app_state", "_loop"], (
        "uvicorn's HttpToolsProtocol.__init__ changed: revisit hyperion/httpprotocol.py (__init__)")

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = Config(app=app, limit_concurrency=7, proxy_headers=False)
    state = ServerState()
    weakref.ref(state)  # the key of _idle_by_server
    loop = asyncio.get_running_loop()
    protocol = HttpToolsProtocol(config, state, {}, loop)
    assert protocol.limit_concurrency == 7, (
        "HttpToolsProtocol no longer keeps --limit-concurrency in limit_concurrency: revisit "
        "hyperion/httpprotocol.py (request_limit)")
    assert protocol.connections is state.connections and protocol.tasks is state.tasks, (
        "HttpToolsProtocol's connections/tasks are no longer the server's shared sets: revisit "
        "hyperion/httpprotocol.py (_over_limit)")
    assert protocol.app is config.loaded_app and protocol.loop is loop and protocol.logger is not None
    assert protocol.cycle is None and protocol.transport is None and protocol.pipeline == deque(), (
        "HttpToolsProtocol's per-connection state changed: revisit hyperion/httpprotocol.py "
        "(on_response_complete, _shed)")
    assert isinstance(protocol.server_state.default_headers, list), (
        "uvicorn's ServerState.default_headers changed: revisit hyperion/httpprotocol.py (send_400_response)")

    # A request read: on_headers_complete tells its own cycle from a pipelined one by the cycle's scope
    # being the protocol's (the dict on_message_begin makes), method included.
    class Transport(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.written: list[bytes] = []

        def get_extra_info(self, name, default=None):
            return default

        def write(self, data) -> None:
            self.written.append(bytes(data))

        def is_closing(self) -> bool:
            return False

        def close(self) -> None:
            pass

    protocol.connection_made(transport := Transport())
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n")
    cycle = protocol.cycle
    assert cycle is not None and cycle.scope is protocol.scope and protocol.scope["method"] == "GET", (
        "uvicorn's HttpToolsProtocol.scope or RequestResponseCycle.scope changed: revisit "
        "hyperion/httpprotocol.py (on_headers_complete: cycle.scope is self.scope)")
    assert cycle.default_headers is state.default_headers, (
        "uvicorn no longer answers with ServerState.default_headers: revisit hyperion/httpprotocol.py "
        "(send_400_response)")
    await asyncio.gather(*protocol.tasks)
    assert transport.written[0].startswith(b"HTTP/1.1 204 ")


def test_http_protocol_methods_the_subclass_wraps_are_the_versions_read():
    """on_headers_complete is called with self.app swapped for the busy page and limit_concurrency set to
    None (uvicorn's check off): that works while it reads both there and queues the app with a pipelined
    request; on_response_complete starts a pipelined request (our idle check runs after it)."""
    from uvicorn.protocols.http import httptools_impl
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert source_hash(HttpToolsProtocol.on_headers_complete) == "1ea8589acfad92d8", (
        "uvicorn's HttpToolsProtocol.on_headers_complete changed upstream: revisit hyperion/httpprotocol.py "
        "(on_headers_complete swaps self.app and turns limit_concurrency off)")
    assert source_hash(HttpToolsProtocol.on_response_complete) == "64e254f28e389e76", (
        "uvicorn's HttpToolsProtocol.on_response_complete changed upstream: revisit hyperion/httpprotocol.py "
        "(on_response_complete: idle unless a pipelined request took over)")
    assert "self.connections.add(self)" in inspect.getsource(HttpToolsProtocol.connection_made), (
        "HttpToolsProtocol.connection_made no longer adds to connections: revisit hyperion/httpprotocol.py")
    assert "self.connections.discard(self)" in inspect.getsource(HttpToolsProtocol.connection_lost), (
        "HttpToolsProtocol.connection_lost no longer discards from connections: revisit hyperion/httpprotocol.py")
    assert parameters(HttpToolsProtocol.on_message_begin) == ["self"]
    assert parameters(HttpToolsProtocol.send_400_response) == ["self", "msg"] and "self.send_400_response(" in (
        inspect.getsource(HttpToolsProtocol.data_received)), (
        "uvicorn no longer answers bytes that are not HTTP through send_400_response(msg): revisit "
        "hyperion/httpprotocol.py (send_400_response)")
    assert "self.response_complete = False" in inspect.getsource(httptools_impl.RequestResponseCycle.__init__), (
        "RequestResponseCycle.response_complete changed: revisit hyperion/httpprotocol.py")
    assert source_hash(httptools_impl.RequestResponseCycle.send) == "abdd8601b326a8da", (
        "uvicorn's RequestResponseCycle.send changed upstream: revisit hyperion/httpprotocol.py (_HeadWithBody: "
        "the write during http.response.start is the head, then body writes, through self.transport)")
    assert source_hash(httptools_impl.RequestResponseCycle.run_asgi) == "0f33f2449a444bc2", (
        "uvicorn's RequestResponseCycle.run_asgi changed upstream: revisit hyperion/httpprotocol.py "
        "(_write_head_with_body: the app is handed self.send, the instance's wrapper)")
    assert httptools_impl.STATUS_LINE[408] == b"HTTP/1.1 408 Request Timeout\r\n", (
        "uvicorn's STATUS_LINE changed: revisit hyperion/httpprotocol.py (_shed's 408)")


# hyperion/app.py -------------------------------------------------------------------------------------------


def test_uvicorn_installs_its_exit_handlers_before_the_lifespan_starts():
    """HyperionApp chains its SIGTERM/SIGINT handlers in front of uvicorn's at lifespan startup: uvicorn must
    have installed its own with signal.signal by then, and call them with (signum, frame)."""
    from uvicorn import server

    assert {signal.SIGTERM, signal.SIGINT} <= set(server.HANDLED_SIGNALS)
    assert "with self.capture_signals():" in inspect.getsource(server.Server.serve), (
        "uvicorn.server.Server.serve no longer captures signals around serving: revisit hyperion/app.py "
        "(_release_streams_on_exit_signals)")
    assert "signal.signal(sig, self.handle_exit)" in inspect.getsource(server.Server.capture_signals), (
        "uvicorn.server.Server.capture_signals no longer uses signal.signal: revisit hyperion/app.py "
        "(_release_streams_on_exit_signals chains onto signal.getsignal)")
    serve = inspect.getsource(server.Server._serve)
    assert "await self.startup(" in serve and "await self.main_loop()" in serve
    assert parameters(server.Server.handle_exit) == ["self", "sig", "frame"], (
        "uvicorn.server.Server.handle_exit changed: revisit hyperion/app.py (_release_streams_on_exit_signals)")


# events/accounts/forms.py ----------------------------------------------------------------------------------


def test_similarity_validator_reads_only_the_fake_meta_of_the_password_owner():
    """PasswordOwner answers user._meta.get_field(name).verbose_name without a model."""
    from django.contrib.auth.password_validation import UserAttributeSimilarityValidator, validate_password
    from django.core.exceptions import ValidationError
    from django.utils import translation

    from events.accounts.forms import PasswordOwner

    assert "._meta.get_field(" in inspect.getsource(UserAttributeSimilarityValidator.validate), (
        "UserAttributeSimilarityValidator no longer names the field through user._meta: revisit "
        "events/accounts/forms.py (PasswordOwner)")
    owner = PasswordOwner(email="camille.durand@example.org", display_name="Camille Durand")
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        validate_password("camille.durand", owner)
    assert "e-mail" in " ".join(refused.value.messages), (
        "the similarity validator's message lost the field's name: revisit events/accounts/forms.py")


# events/management/utility.py ------------------------------------------------------------------------------


def test_management_utility_still_asks_the_methods_we_override():
    from django.core.management import ManagementUtility

    assert parameters(ManagementUtility.fetch_command) == ["self", "subcommand"]
    assert parameters(ManagementUtility.main_help_text) == ["self", "commands_only"]
    assert "self.fetch_command(" in inspect.getsource(ManagementUtility.execute), (
        "ManagementUtility.execute no longer calls fetch_command: revisit events/management/utility.py")


# Private names between our own modules -----------------------------------------------------------------------


def test_no_module_imports_another_modules_private_names():
    """A leading underscore says "this module's own": a service reaching into another's private helper
    couples them where nobody looks. (tests/ may.)"""
    found = []
    for path in sorted([*ROOT.joinpath("events").rglob("*.py"), *ROOT.joinpath("hyperion").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("events",
                                                                                               "hyperion"):
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                if private:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {private} from {node.module}")
    assert found == []
