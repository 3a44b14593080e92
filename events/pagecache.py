"""A per-process cache of rendered page fragments that are the same for every visitor (the home page's
list for given filters and language).

It is dropped as a whole whenever an event or its seats change: the process hears of every such change,
its own after commit and the other processes' through the same PostgreSQL NOTIFY that drives the live
seat counter (events/live.py). Entries also expire after ``PAGE_CACHE_SECONDS`` so that events that just
ended leave the list without any write. Most home-page hits then run no query at all.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from django.conf import settings
from markupsafe import Markup

_entries: OrderedDict[tuple, tuple[int, float, Markup]] = OrderedDict()
_version = 0
MAX_ENTRIES = 512


def invalidate() -> None:
    """Something visible changed: every cached fragment is stale."""
    global _version
    _version += 1


def get(key: tuple) -> Markup | None:
    entry = _entries.get(key)
    if entry is None:
        return None
    version, expires_at, html = entry
    if version != _version or expires_at < time.monotonic():
        _entries.pop(key, None)
        return None
    _entries.move_to_end(key)
    return html


def put(key: tuple, html: Markup, *, version: int) -> None:
    """Store a fragment rendered from data read at ``version`` (a change meanwhile makes it stale)."""
    if settings.PAGE_CACHE_SECONDS <= 0:
        return
    _entries[key] = (version, time.monotonic() + settings.PAGE_CACHE_SECONDS, html)
    _entries.move_to_end(key)
    while len(_entries) > MAX_ENTRIES:
        _entries.popitem(last=False)


def version() -> int:
    return _version
