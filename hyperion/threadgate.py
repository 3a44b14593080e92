"""A bounded gate in front of a thread pool, for slow CPU work on the request path (password hashing).

Without it, every request that needs a hash queues on the pool's unbounded work queue: 40 sign-ups at
once made a real log-in wait 12.9 s behind them, and since each of them held an admission turn while it
waited, pages waited too. Here at most ``running`` calls run in the pool at once and at most ``waiting``
wait for it, in arrival order; past that, ``GateFull`` is raised at once (the views answer 429 with
Retry-After), before anything was written. While a call waits for its thread and runs, the request gives
back its admission turn (hyperion/turns.py): a page never waits behind a hash.

Calls come in two lanes. ``run(..., priority=True)`` calls (checks of a password: log-ins) have ``reserved``
places of the line to themselves and take a freed thread before the other waiting calls; the others (new
hashes: sign-up, password change and reset) may fill only the rest of the line, so they are refused first.
With one shared line, a flood of sign-ups had refused every real log-in (faults/results/hash-flood.md).
Within a lane, calls go in arrival order.
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
    bounds (read at every call, from the callables given, so that settings can change them): ``running``
    calls at once, ``waiting`` in line, of which ``reserved`` for priority calls."""

    def __init__(self, name: str, *, running: Callable[[], int], waiting: Callable[[], int],
                 reserved: Callable[[], int] = lambda: 0, seconds_per_call: float = 0.3) -> None:
        self.name = name
        self._running_limit, self._waiting_limit, self._reserved = running, waiting, reserved
        self._seconds_per_call = seconds_per_call  # only for the Retry-After estimate
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.running = 0
        self._first: deque[asyncio.Future] = deque()  # priority calls waiting, served first
        self._rest: deque[asyncio.Future] = deque()

    @property
    def waiting(self) -> int:
        return len(self._first) + len(self._rest)

    @property
    def waiting_priority(self) -> int:
        return len(self._first)

    def _for_this_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # one line per event loop (tests run several loops in one process)
            self._loop, self.running, self._first, self._rest = loop, 0, deque(), deque()
        return loop

    def _executor(self, size: int) -> ThreadPoolExecutor:
        if self._pool is None or self._pool_size < size:
            # Threads start on the first call, not at import: a server that never hashes keeps its two.
            if self._pool is not None:  # the limit grew (settings changed): the old threads end when idle
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=self.name)
            self._pool_size = size
        return self._pool

    async def run(self, function: Callable[..., Any], *args: Any, priority: bool = False) -> Any:
        loop = self._for_this_loop()
        limit = max(1, self._running_limit())
        lane = self._first if priority else self._rest
        queued: asyncio.Future | None = None
        if self.running >= limit or self.waiting:
            # A priority call may take any free place of the line; the others leave ``reserved`` places to it.
            line = self._waiting_limit()
            if self.waiting >= line or (not priority and len(self._rest) >= line - self._reserved()):
                ahead = self.running + len(self._first) + (0 if priority else len(self._rest))
                raise GateFull(max(1, math.ceil(ahead / limit * self._seconds_per_call)))
            queued = loop.create_future()
            lane.append(queued)
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
                        lane.remove(queued)
                    raise
            try:
                return await loop.run_in_executor(self._executor(limit), function, *args)
            finally:
                self._done()

    def _done(self) -> None:
        """A call finished: its place goes to the first in line, priority calls first."""
        for lane in (self._first, self._rest):
            while lane:
                queued = lane.popleft()
                if not queued.done():
                    queued.set_result(None)
                    return
        self.running -= 1
