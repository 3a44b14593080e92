"""Full garbage collections short in a rush: what lives long is frozen when the server is idle.

CPython's cyclic collector runs a full (generation 2) collection by itself when enough objects have survived
two younger collections, and a full collection walks every object it tracks while the event loop stands
still. A web process with 2,000 open live-seat streams holds a few hundred thousand long-lived objects:
measured during the benchmark's registration rush (gc.callbacks in the server), a full collection about
every second, each stopping everything for 40-210 ms, most of them freeing nothing. Those stops were the
rush's tail: every request in flight waited for them, and the requests that arrived meanwhile queued behind.

Turning the automatic full collections off and running them only when idle removed the stops, but cyclic
garbage then waited for an idle moment: the worker grew from 117 to 143 MB at 1,000 clients. So CPython
keeps collecting as it always does, and this pacer changes what a full collection has to walk: when the
admission queue has been empty for two checks in a row (``GC_CHECK_SECONDS`` apart), at most once per
``GC_FULL_MIN_SECONDS``, it runs a full collection of everything (``gc.unfreeze``, ``gc.collect``) and then
freezes what survived (``gc.freeze``: the open streams, the caches, the kept sessions), as the app does at
start-up. The automatic collections of a rush then walk only what was made since, and are short. What was
frozen and later became cyclic garbage (a closed stream's objects, say) is found at the next idle moment,
or after ``GC_FULL_MAX_SECONDS`` whatever the load.
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
        self.last_full = clock()
        self.was_idle = False
        self.full_collections = 0

    def start(self) -> None:
        if settings.GC_PACING:
            self.last_full = self.clock()
            self.task = asyncio.create_task(self._run(), name="gc-pacing")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def due(self) -> bool:
        """Whether to collect everything and freeze the survivors now (and remember this check's idleness)."""
        idle, was_idle = self.idle(), self.was_idle
        self.was_idle = idle
        age = self.clock() - self.last_full
        return age >= settings.GC_FULL_MAX_SECONDS or (idle and was_idle and age >= settings.GC_FULL_MIN_SECONDS)

    def collect(self) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self.last_full = self.clock()
        self.full_collections += 1
        logger.debug("full collection and freeze: %d unreachable, %.1f ms", found,
                     (time.perf_counter() - started) * 1000)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(settings.GC_CHECK_SECONDS)
            if self.due():
                self.collect()
