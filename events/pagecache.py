"""A per-process cache of rendered page fragments that are the same for every visitor (the home page's
list for given filters and language, the calendar's month and week).

A fragment is dropped when an event or its seats change: the process hears of every such change, its own
after commit and the other processes' through the same PostgreSQL NOTIFY that drives the live seat
counter (events/live.py). Under a burst of registrations, a fragment may lag behind a change by at most
``PAGE_CACHE_GRACE_SECONDS`` (1 s by default): the lists' seat counts are then at most a second old, the
event page's live counter stays exact, and a rush of registrations does not turn every list view into a
fresh render. Entries also expire after ``PAGE_CACHE_SECONDS``, so events that just ended leave the list
without any write.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict

from django.conf import settings
from markupsafe import Markup

_entries: OrderedDict[tuple, tuple[float, float, Markup]] = OrderedDict()
_changes: list[float] = []  # when changes were heard (monotonic), recent ones only
MAX_ENTRIES = 512


def invalidate() -> None:
    """Something visible changed (now)."""
    now = time.monotonic()
    _changes.append(now)
    horizon = now - max(settings.PAGE_CACHE_SECONDS, 1.0)
    if _changes[0] < horizon:  # keep only what can still concern a live entry
        del _changes[:bisect.bisect_left(_changes, horizon)]


def version() -> float:
    """When a fragment about to be rendered starts reading the database."""
    return time.monotonic()


def get(key: tuple) -> Markup | None:
    entry = _entries.get(key)
    if entry is None:
        return None
    read_at, expires_at, html = entry
    now = time.monotonic()
    first_change = bisect.bisect_right(_changes, read_at)
    stale = first_change < len(_changes) and now - _changes[first_change] >= settings.PAGE_CACHE_GRACE_SECONDS
    if stale or expires_at < now:
        _entries.pop(key, None)
        return None
    _entries.move_to_end(key)
    return html


def put(key: tuple, html: Markup, *, version: float) -> None:
    """Store a fragment rendered from data read from ``version`` on."""
    if settings.PAGE_CACHE_SECONDS <= 0:
        return
    _entries[key] = (version, version + settings.PAGE_CACHE_SECONDS, html)
    _entries.move_to_end(key)
    while len(_entries) > MAX_ENTRIES:
        _entries.popitem(last=False)


def clear() -> None:
    """Forget every fragment (tests, whose data changes under the services' feet)."""
    _entries.clear()
    _changes.clear()
