"""Full garbage collections when the server is idle, not in the middle of a rush.

CPython's cyclic collector runs a full (generation 2) collection by itself when enough objects have survived
two younger collections. A web process with 2,000 open live-seat streams holds a few hundred thousand such
objects, and a full collection walks all of them while the event loop stands still: measured during the
benchmark's registration rush (gc.callbacks in the server), one full collection about every second, each
stopping everything for 40-210 ms, most of them freeing nothing. Those stops were the rush's tail: every
request in flight waited for them, and the requests that arrived meanwhile queued behind.

So the process turns off the automatic full collections (the third threshold, out of reach) and runs them
itself: when the admission queue has been empty for two checks in a row (``GC_CHECK_SECONDS`` apart) and
the last full collection is at least ``GC_FULL_MIN_SECONDS`` old, or regardless once it is
``GC_FULL_MAX_SECONDS`` old, so that cycles never pile up under a load that never stops. The young
generations are collected as before (a few milliseconds at most); objects loaded at start-up stay frozen
(hyperion/app.py).
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

# The third threshold: gen2 collections happen after this many gen1 ones (and only when the survivors grew by
# a quarter). Out of reach: only this pacer collects generation 2.
_NEVER = 1_000_000_000


class CollectorPacing:
    def __init__(self, idle: Callable[[], bool], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle = idle
        self.clock = clock
        self.task: asyncio.Task | None = None
        self.thresholds: tuple[int, int, int] | None = None
        self.last_full = clock()
        self.was_idle = False
        self.full_collections = 0

    def start(self) -> None:
        if not settings.GC_PACING:
            return
        self.thresholds = gc.get_threshold()
        first, second, _third = self.thresholds
        gc.set_threshold(first, second, _NEVER)
        self.last_full = self.clock()
        self.task = asyncio.create_task(self._run(), name="gc-pacing")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        if self.thresholds is not None:
            gc.set_threshold(*self.thresholds)
            self.thresholds = None

    def due(self) -> bool:
        """Whether a full collection should run now (and remember this check's idleness for the next one)."""
        idle, was_idle = self.idle(), self.was_idle
        self.was_idle = idle
        age = self.clock() - self.last_full
        return age >= settings.GC_FULL_MAX_SECONDS or (idle and was_idle and age >= settings.GC_FULL_MIN_SECONDS)

    def collect(self) -> None:
        started = time.perf_counter()
        found = gc.collect(2)
        self.last_full = self.clock()
        self.full_collections += 1
        logger.debug("full collection: %d unreachable, %.1f ms", found, (time.perf_counter() - started) * 1000)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(settings.GC_CHECK_SECONDS)
            if self.due():
                self.collect()
