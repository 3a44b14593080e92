"""What the server needs from the app, as interfaces the app fills in through settings.

hyperion/ is the plumbing below the app and never imports ``events``: the app names, in settings (as Django's
own AUTHENTICATION_BACKENDS does), the objects that meet these interfaces, and the plumbing loads them by
their dotted path when it starts.

- ``LIFESPAN_HOOKS``: objects started and stopped with the server process (``LifespanHook``): the live seat
  counter's LISTEN connection, the outbox sender when it runs inside the web process.
- ``SESSION_LOADER``: who the request's session cookie belongs to, and the cookie to set or clear on the way
  out (``SessionLoader``), for hyperion.middleware.AuthSessionMiddleware.
- ``QUICK_POSTS``: POSTs the app answers without Django's handler in their common case (``QuickPost``,
  hyperion/quickposts.py): a lottery's entries at an opening.
- ``TEMPLATES[...]["OPTIONS"]["globals"]``: the app's own Jinja2 globals (hyperion.jinja.environment).

The app's changes reach the visitors' page store the other way round, by calling its API
(hyperion.pagecache: ``invalidate``), which needs no hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class LifespanHook(Protocol):
    def start(self) -> None:
        """At startup, inside the server's event loop. Must not wait for the database: the site starts (and
        answers its 503 page) while the database is down."""

    async def stop(self) -> None:
        """At shutdown, before the database engine is disposed."""

    def release_streams(self) -> None:
        """SIGTERM or SIGINT arrived: end at once whatever response would otherwise stay open (a live stream)
        and hold the exit. Called from the signal handler through the loop, before uvicorn's own handling."""


class SessionLoader(Protocol):
    anonymous: Any  # the request.user of a request without a valid session

    async def user_for_request(self, request) -> Any:
        """The user of the request's session cookie, or ``anonymous``. May raise a database error."""

    def apply_cookie(self, request, response) -> None:
        """Set or clear the session cookie on ``response``, as the view decided (log-in, log-out, an unknown
        token)."""


class QuickPost(Protocol):
    # The cookies a kept answer may set (the messages cookie); an answer that sets any other is not kept.
    cookies_allowed: frozenset[str]

    def wants(self, scope) -> bool:
        """A cheap look at the POST's path: one this hook may answer. Called for every POST."""

    async def answer(self, scope, body: bytes,
                     kept: Callable[[object], dict | None]) -> tuple[object, dict | None] | None:
        """Do the request's work if it is the common case and ``kept(key)`` holds its answer: returns ``(key,
        that answer)``. ``(key, None)``: none is kept yet, nothing was written, Django answers and the view
        may mark its answer to be kept under ``key``. None: not the common case, nothing written, Django
        answers. May raise only before writing anything (Django then answers too)."""


class BackgroundTask:
    """A ``LifespanHook`` that runs one long task of the app in the server's event loop (the outbox sender,
    the lottery drawer): started if ``enabled()``, told to stop through ``self.stopping``, awaited at
    shutdown. It holds no response open, so there is no stream to release."""

    name = "background-task"

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.stopping = asyncio.Event()

    def enabled(self) -> bool:
        return True

    async def run(self) -> None:
        """The task: return once ``self.stopping`` is set."""
        raise NotImplementedError

    def start(self) -> None:
        if self.enabled():
            self.stopping = asyncio.Event()
            self.task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        if self.task is not None:
            self.stopping.set()
            await self.task
            self.task = None

    def release_streams(self) -> None:
        """Nothing to release: the task holds no response open, and stops with the lifespan shutdown."""


class DueTask(BackgroundTask):
    """A ``BackgroundTask`` that does what is due, then sleeps until the next thing falls due (at most
    ``interval()`` seconds, so that something set up meanwhile is seen), again and again: the lottery drawer,
    the expiry of waitlist offers. A failed round is logged and tried again after the interval."""

    def interval(self) -> float:
        raise NotImplementedError

    async def do_due(self) -> datetime | None:
        """Do what is due now; return when the next thing falls due (None: nothing waits)."""
        raise NotImplementedError

    async def run(self) -> None:
        logger = logging.getLogger(f"hyperion.{self.name}")
        while not self.stopping.is_set():
            interval = self.interval()
            try:
                next_due = await self.do_due()
                wait = interval if next_due is None else min(
                    interval, max((next_due - datetime.now(UTC)) / timedelta(seconds=1), 0.05))
            except Exception:
                logger.exception("%s: round failed; trying again", self.name)
                wait = interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=wait)


def lifespan_hooks() -> list[LifespanHook]:
    return [import_string(path) for path in settings.LIFESPAN_HOOKS]


def quick_posts() -> list[QuickPost]:
    return [import_string(path) for path in getattr(settings, "QUICK_POSTS", ())]


def session_loader() -> SessionLoader:
    return import_string(settings.SESSION_LOADER)


def imported(paths: dict[str, str]) -> dict[str, Any]:
    """``{name: dotted path}`` → ``{name: the object}``."""
    return {name: import_string(path) for name, path in paths.items()}
