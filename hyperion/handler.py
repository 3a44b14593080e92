"""A Django ASGI handler that keeps every request on the event loop, with no OS thread per request.

Django's stock ``ASGIHandler.__call__`` enters a fresh asgiref ``ThreadSensitiveContext`` for each request:
any sync piece on the request path (a sync signal receiver, a sync-to-async wrapper) then starts a new OS thread
for that request, which is where 1,000 threads at 1,000 clients came from. This subclass
serves the request without that context, sends ``request_started`` with plain ``send`` (its receivers are
sync and do no I/O once Django's ORM receivers are disconnected), closes the response inline, where
Django awaits response.close through a sync-to-async wrapper, and watches for the client leaving only while
a stream is sent (see ``send_until_disconnect``); its ``RequestProcessed`` exception class is defined once
rather than per request.

``handle`` is a copy of Django 6.1.3's with those changes: compare it with Django's on every upgrade
(Django is pinned in pyproject.toml, and tests/plumbing/test_asgi.py counts the server's threads).
"""

from __future__ import annotations

import asyncio
from contextlib import closing

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix


class RequestProcessed(Exception):
    """Ends the task group once the response is sent (Django defines this class anew in every request,
    which costs a class object per request, freed only by the cyclic garbage collector)."""


class LoopBoundASGIHandler(ASGIHandler):
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

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
