"""A Django ASGI handler that keeps every request on the event loop, with no OS thread per request.

Django's stock ``ASGIHandler.__call__`` enters a fresh asgiref ``ThreadSensitiveContext`` for each request:
any sync piece on the request path (a sync signal receiver, a sync-to-async wrapper) then starts a new OS thread
for that request, which is where 1,000 threads at 1,000 clients came from. This subclass
serves the request without that context, sends ``request_started`` with plain ``send`` (its receivers are
sync and do no I/O once Django's ORM receivers are disconnected), closes the response inline, where
Django awaits response.close through a sync-to-async wrapper, and watches for the client leaving only while
a stream is sent (see ``send_until_disconnect``); its ``RequestProcessed`` exception class is defined once
rather than per request.

Error answers stay on the loop too. Django converts an ``Http404`` or a ``PermissionDenied`` into its
error page with ``sync_to_async(response_for_exception)``, hands a view's exception to the exception
middleware through a thread even when there is none, and logs every 4xx/5xx answer with
``sync_to_async(log_response)``: each a hop to a worker thread, so a scanner collecting 404s and 403s
started threads (6 to 9 in tests/plumbing/test_error_threads.py's server with Django's path), and each hop waited on
a thread hand-off. The
request's own client errors (404, 403, 400: ``CLIENT_ERRORS``) are now answered inline by Django's own
``response_for_exception`` (our error views and Django's logging do no I/O but the log line), and the
answer is logged inline; a server error (500) still goes Django's way.

``handle``, ``get_response_async`` and ``_get_response_async`` (with ``_view_response``) are copies of
Django 6.1.3's with those changes: compare them with Django's on every upgrade (Django is pinned in
pyproject.toml, and tests/plumbing/test_asgi.py and tests/plumbing/test_error_threads.py count the server's threads).
"""

from __future__ import annotations

import asyncio
import io
from contextlib import closing
from inspect import iscoroutinefunction

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import BadRequest, PermissionDenied, RequestAborted, SuspiciousOperation
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import response_for_exception
from django.http import Http404
from django.http.multipartparser import MultiPartParserError
from django.urls import set_script_prefix
from django.utils.log import log_response

# The client's mistakes, answered by the error views on the event loop (a 500 still takes Django's path).
CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


class RequestProcessed(Exception):
    """Ends the task group once the response is sent (Django defines this class anew in every request,
    which costs a class object per request, freed only by the cyclic garbage collector)."""


class LoopBoundASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        disconnect_cache_closing_with_nothing_to_close()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def read_body(self, receive):
        """Django's, except for a body that came whole in one message and fits in memory (every GET: an
        empty one): a ``BytesIO`` of it rather than a ``SpooledTemporaryFile`` written chunk by chunk (which
        holds it in memory too at that size). Any other body goes to Django's, the first message replayed."""
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body = message.get("body", b"")
            if len(body) <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
                return io.BytesIO(body)
        replayed = False

        async def receive_again():
            nonlocal replayed
            if not replayed:
                replayed = True
                return message
            return await receive()

        return await super().read_body(receive_again)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return

        with closing(body_file):
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                body_file.close()
                await self.send_response(error_response, send)
                error_response.close()
                return

            response = await self.run_get_response(request)
            if response.streaming:
                await self.send_until_disconnect(response, receive, send)
            else:
                await self.send_response(response, send)
            response.close()

    async def get_response_async(self, request):
        """Django's, with the error answers logged inline rather than by ``sync_to_async(log_response)``
        (a 403 in one line: hyperion/logfilters.py), and without its ``set_urlconf(settings.ROOT_URLCONF)``:
        with no URLconf set, Django's resolver and ``reverse`` use ``settings.ROOT_URLCONF`` anyway, so the
        task-local write (asgiref's ``Local``: a lock, a copy of its dict) and ``reset_urlconf``'s delete after
        the response were work for nothing. A middleware that sets ``request.urlconf`` (none here) still gets
        it set by Django's ``resolve_request``, and ``reset_urlconf`` still clears it."""
        response = await self._middleware_chain(request)
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        return response

    async def _get_response_async(self, request):
        """Django's, with a client error (``CLIENT_ERRORS``: an unknown URL, a view's Http404 or
        PermissionDenied, a bad request) turned into its error page here, on the loop, rather than by the
        ``sync_to_async(response_for_exception)`` wrapped around this method; and a view's exception handed
        to the exception middleware through a thread only when there is such a middleware (we have none)."""
        try:
            return await self._view_response(request)
        except CLIENT_ERRORS as error:
            return response_for_exception(request, error)

    async def _view_response(self, request):
        response = None
        callback, callback_args, callback_kwargs = self.resolve_request(request)

        for middleware_method in self._view_middleware:
            response = await middleware_method(request, callback, callback_args, callback_kwargs)
            if response:
                break

        if response is None:
            # The sync_to_async hops below stay from Django's code but never run for this site: every view is
            # async, no middleware has process_exception, and no view returns a TemplateResponse (the thread
            # tests would see a hop). They are kept so a sync view or such a middleware still works if added.
            wrapped_callback = self.make_view_atomic(callback)
            if not iscoroutinefunction(wrapped_callback):
                wrapped_callback = sync_to_async(wrapped_callback, thread_sensitive=True)
            try:
                response = await wrapped_callback(request, *callback_args, **callback_kwargs)
            except Exception as e:
                if not self._exception_middleware:
                    raise
                response = await sync_to_async(self.process_exception_by_middleware, thread_sensitive=True)(
                    e, request)
                if response is None:
                    raise

        self.check_response(response, callback)

        if hasattr(response, "render") and callable(response.render):
            for middleware_method in self._template_response_middleware:
                response = await middleware_method(request, response)
                self.check_response(response, middleware_method,
                                    name=f"{middleware_method.__self__.__class__.__name__}.process_template_response")
            try:
                if iscoroutinefunction(response.render):
                    response = await response.render()
                else:
                    response = await sync_to_async(response.render, thread_sensitive=True)()
            except Exception as e:
                if not self._exception_middleware:
                    raise
                response = await sync_to_async(self.process_exception_by_middleware, thread_sensitive=True)(
                    e, request)
                if response is None:
                    raise

        if asyncio.iscoroutine(response):
            raise RuntimeError("Response is still a coroutine.")
        return response

    async def send_response(self, response, send):
        """Django's, for a whole (not streaming) response, with the headers read from the response's header
        store rather than through ``response.items()``, whose mapping view looks each name up again (~12
        generator steps and lookups per header). The names and values are the ones Django checked when they
        were set: ``ResponseHeaders`` keeps each as ``(name as given, value)``, both ``str``. A stream goes
        to Django's."""
        if response.streaming:
            return await super().send_response(response, send)
        headers = [(name.encode("ascii"), value.encode("latin1")) for name, value in response.headers._store.values()]
        for cookie in response.cookies.values():
            headers.append((b"Set-Cookie", cookie.OutputString().encode("ascii")))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        for chunk, last in self.chunk_bytes(response.content):
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})

    async def send_until_disconnect(self, response, receive, send) -> None:
        """Django's watch for the client leaving, kept for streams only: a live seat counter may stay open for
        hours and must end when its page closes. Django runs it around every response: a task per request,
        cancelled by an exception group whose tracebacks hold the request's frames in reference cycles (~70
        objects of cyclic garbage per request, so the collector ran every ten or so requests), to stop a view
        that renders in milliseconds anyway. A request whose client leaves during its view is now finished,
        as under a WSGI server: a registration is kept whole (make faults, client-cancel, checks that each is
        whole or absent) rather than cancelled between two statements; one that left while it waited for its
        turn is still dropped (``read_body`` reads the disconnect)."""
        try:
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self.listen_for_disconnect(receive))
                    await self.send_response(response, send)
                    raise RequestProcessed
            except* (RequestProcessed, RequestAborted):
                pass
        except BaseExceptionGroup as exception_group:
            if len(exception_group.exceptions) == 1:
                raise exception_group.exceptions[0] from None
            raise


def disconnect_orm_request_signals() -> None:
    """Disconnect the receivers that ``django.db`` connects to every request.

    They reset the ORM's query log and close its connections; with no ORM database they have nothing to
    do, and as sync receivers they would cost a thread hop per request under ``asend``.
    """
    from django import db

    signals.request_started.disconnect(db.reset_queries)
    signals.request_started.disconnect(db.close_old_connections)
    signals.request_finished.disconnect(db.close_old_connections)


def disconnect_cache_closing_with_nothing_to_close() -> None:
    """Disconnect Django's ``close_caches`` from ``request_finished`` when every configured cache backend
    keeps Django's do-nothing ``BaseCache.close`` (all but memcached's, in Django 6.1; the site configures
    none, so local memory): after each request it walks the caches made in this task, through a task-local
    lookup per alias, only to call that ``close``. A backend whose ``close`` does something keeps
    the receiver."""
    from django.core.cache import close_caches
    from django.core.cache.backends.base import BaseCache
    from django.utils.module_loading import import_string

    if all(import_string(cache["BACKEND"]).close is BaseCache.close for cache in settings.CACHES.values()):
        signals.request_finished.disconnect(close_caches)
