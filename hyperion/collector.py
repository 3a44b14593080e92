"""Full garbage collections short in a rush: what lives long is frozen when the server is idle.

CPython's cyclic collector runs a full (generation 2) collection by itself when enough objects have survived
two younger collections, and a full collection walks every object it tracks while the event loop stands
still. A web process with 2,000 open live-seat streams holds a few hundred thousand long-lived objects:
measured during the benchmark's registration rush (gc.callbacks in the server), a full collection about
every second, each stopping everything for 40-210 ms, most of them freeing nothing. Those stops were the
rush's tail: every request in flight waited for them, and the requests that arrived meanwhile queued behind.

Turning the automatic full collections off and running them only when idle removed the stops, but cyclic
garbage then waited for an idle moment: the worker grew from 117 to 143 MB at 1,000 clients. So CPython
keeps collecting as it always does, and this pacer changes what its collections have to walk. When no
request has been in Django for two checks in a row (``GC_CHECK_SECONDS`` apart), at most once per
``GC_FULL_MIN_SECONDS``, it collects what is not frozen yet and freezes what survived (``gc.freeze``: the
open streams, the caches, the kept sessions), as the app does at start-up: a walk of what was made since the
last freeze, not of everything. The automatic collections of a rush then walk only what the rush makes.
What was frozen and later became cyclic garbage (a closed stream's objects, say) is found by a walk of
everything (``gc.unfreeze`` first), at an idle moment once ``GC_FULL_MAX_SECONDS`` have passed since the
last one, or at twice that whatever the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable

from django.conf import settings

logger = logging.getLogger("hyperion.gc")


class CollectorPacing:
    def __init__(self, idle: Callable[[], bool], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle = idle
        self.clock = clock
        self.task: asyncio.Task | None = None
        self.last_freeze = self.last_everything = clock()
        self.idle_checks = 0  # idle checks in a row
        self.freezes = self.walks_of_everything = 0

    def start(self) -> None:
        if settings.GC_PACING:
            self.last_freeze = self.last_everything = self.clock()
            self.task = asyncio.create_task(self._run(), name="gc-pacing")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def due(self) -> str | None:
        """What to do now: "everything" (unfreeze, collect, freeze), "new" (collect, freeze) or None. Each call
        is one check (it counts the idle checks in a row)."""
        self.idle_checks = self.idle_checks + 1 if self.idle() else 0
        now = self.clock()
        quiet = self.idle_checks >= 2
        if now - self.last_everything >= 2 * settings.GC_FULL_MAX_SECONDS or (
                quiet and now - self.last_everything >= settings.GC_FULL_MAX_SECONDS):
            return "everything"
        if quiet and now - self.last_freeze >= settings.GC_FULL_MIN_SECONDS:
            return "new"
        return None

    def collect(self, what: str = "new") -> None:
        started = time.perf_counter()
        if what == "everything":
            gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self.last_freeze = self.clock()
        self.freezes += 1
        if what == "everything":
            self.last_everything = self.last_freeze
            self.walks_of_everything += 1
        logger.debug("collected %s and froze the survivors: %d unreachable, %.1f ms", what, found,
                     (time.perf_counter() - started) * 1000)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(settings.GC_CHECK_SECONDS)
            what = self.due()
            if what is not None:
                self.collect(what)
