"""A bounded gate in front of a thread pool, for slow CPU work on the request path (password hashing).

Without it, every request that needs a hash queues on the pool's unbounded work queue: 40 sign-ups at
once made a real log-in wait 12.9 s behind them, and since each of them held an admission turn while it
waited, pages waited too. Here at most ``running`` calls run in the pool at once and at most ``waiting``
wait for it, in arrival order; past that, ``GateFull`` is raised at once (the views answer 429 with
Retry-After), before anything was written. While a call waits for its thread and runs, the request gives
back its admission turn (hyperion/turns.py): a page never waits behind a hash.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hyperion import turns


class GateFull(Exception):
    """Too many calls are waiting already; ``retry_after`` (seconds) is when the line should be short again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many waiting, retry after {retry_after} s")
        self.retry_after = retry_after


class ThreadGate:
    """``await gate.run(function, *args)``: ``function(*args)`` in one of the gate's threads, within the
    bounds (read at every call, from the callables given, so that settings can change them)."""

    def __init__(self, name: str, *, running: Callable[[], int], waiting: Callable[[], int],
                 seconds_per_call: float = 0.3) -> None:
        self.name = name
        self._running_limit, self._waiting_limit = running, waiting
        self._seconds_per_call = seconds_per_call  # only for the Retry-After estimate
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.running = 0
        self._waiting: deque[asyncio.Future] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _for_this_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # one line per event loop (tests run several loops in one process)
            self._loop, self.running, self._waiting = loop, 0, deque()
        return loop

    def _executor(self, size: int) -> ThreadPoolExecutor:
        if self._pool is None or self._pool_size < size:
            # Threads start on the first call, not at import: a server that never hashes keeps its two.
            if self._pool is not None:  # the limit grew (settings changed): the old threads end when idle
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=self.name)
            self._pool_size = size
        return self._pool

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        loop = self._for_this_loop()
        limit = max(1, self._running_limit())
        queued: asyncio.Future | None = None
        if self.running >= limit or self._waiting:
            if len(self._waiting) >= self._waiting_limit():
                ahead = self.running + len(self._waiting)
                raise GateFull(max(1, math.ceil(ahead / limit * self._seconds_per_call)))
            queued = loop.create_future()
            self._waiting.append(queued)
        else:
            self.running += 1
        async with turns.given_back():
            if queued is not None:
                try:
                    await queued  # handed a place by a call that finished (``_done``)
                except asyncio.CancelledError:
                    if queued.done() and not queued.cancelled():
                        self._done()  # handed a place it will not use: pass it on
                    else:
                        self._waiting.remove(queued)
                    raise
            try:
                return await loop.run_in_executor(self._executor(limit), function, *args)
            finally:
                self._done()

    def _done(self) -> None:
        """A call finished: its place goes to the first in line."""
        while self._waiting:
            queued = self._waiting.popleft()
            if not queued.done():
                queued.set_result(None)
                return
        self.running -= 1
