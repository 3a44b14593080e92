"""The visitors' page store: a per-process cache of what public pages show to everyone, rendered fragments
(the home page's list for given filters and language, the calendar's month and week) and whole responses
for visitors without a session (served by the ASGI app before Django: hyperion/publicpages.py does the
serving, from this store).

This module is the store's whole API for the app: a view says what its page shows (``allow``), builds a
fragment through it (``fragment``), and whatever changes what public pages show says so (``invalidate``).

Each entry names what it shows (its tags): ``LISTS`` for anything built from the public lists of events,
``event_tag(id)`` for one event's page. An entry is dropped when one of its tags changes: the process hears
of every change, its own after commit and the other processes' through the same PostgreSQL NOTIFY that
drives the live seat counter (the app's live package). A change to event 12 drops the lists and event 12's page,
not the pages of the other 9,999 events. Under a burst of registrations, an entry may lag behind a change
by at most ``PAGE_CACHE_GRACE_SECONDS`` (1 s by default): the seat counts shown are then at most a second
old, the event page's live counter stays exact, and a rush of registrations does not turn every view into
a fresh render. Entries also expire (``PAGE_CACHE_SECONDS``, or earlier when the page says so: an event
page expires when its registration opens or closes), so events that just ended leave the lists without any
write. Memory is bounded by ``PAGE_CACHE_MAX_BYTES``; the least recently used entries go first.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Iterable

from django.conf import settings

LISTS = "lists"
SCOPE_KEY = "hyperion.public_page"  # the ASGI scope's entry carrying a request's publicpages.Ticket
_EVERYTHING = "*"  # a change that may show anywhere (an association renamed, a lost NOTIFY connection)
# Changes remembered for the entries being rendered while they happen (a render counts from its admission
# into Django, so it lasts milliseconds; an older one is treated as changed): ~150 bytes each.
_LOG_SECONDS = 10.0
_LOG_MAX = 2_000
MAX_ENTRIES = 20_000


def event_tag(event_id: int) -> tuple[str, int]:
    return ("event", event_id)


def user_tag(user_id: int) -> tuple[str, int]:
    """What one account's own entries show (its registrations): changed only by that account's changes."""
    return ("user", user_id)


class _Entry:
    __slots__ = ("value", "size", "tags", "expires_at", "changed_at", "exact")

    def __init__(self, value, size: int, tags: tuple, expires_at: float, changed_at: float | None,
                 exact: bool = False) -> None:
        self.value, self.size, self.tags = value, size, tags
        self.expires_at, self.changed_at, self.exact = expires_at, changed_at, exact


_entries: OrderedDict[tuple, _Entry] = OrderedDict()
_bytes = 0
# Entries that no change has touched yet, by tag: a change marks them (once) and leaves this index.
_clean: dict[object, set[tuple]] = {}
# Recent changes (when, tag), oldest first; _log_floor: changes before it may have been forgotten.
_log: deque[tuple[float, object]] = deque()
_log_floor = 0.0


def invalidate(event_ids: Iterable[int] = (0,)) -> None:
    """Events ``event_ids`` (or their seats) changed, now; 0: something else shown on public pages did."""
    tags: list[object] = []
    for event_id in event_ids:
        if event_id:
            tags += [LISTS, event_tag(event_id)]
        else:
            tags.append(_EVERYTHING)
    invalidate_tags(tags)


def invalidate_tags(tags: Iterable[object]) -> None:
    """What ``tags`` name changed, now (``user_tag``: one account's own entries)."""
    now = time.monotonic()
    for tag in tags:
        _log.append((now, tag))
        keys = list(_entries) if tag == _EVERYTHING else _clean.pop(tag, ())
        for key in keys:
            _mark_changed(key, now)
    global _log_floor
    horizon = now - _LOG_SECONDS
    while _log and (_log[0][0] < horizon or len(_log) > _LOG_MAX):
        _log_floor = _log.popleft()[0]


def _mark_changed(key: tuple, when: float) -> None:
    entry = _entries.get(key)
    if entry is None or entry.changed_at is not None:
        return
    entry.changed_at = when
    _unindex(key, entry)


def _unindex(key: tuple, entry: _Entry) -> None:
    for tag in entry.tags:
        keys = _clean.get(tag)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del _clean[tag]


def version() -> float:
    """When a value about to be built starts reading the database (pass it to ``put``)."""
    return time.monotonic()


def get(key: tuple):
    """The cached value, or None when there is none or it is out of date."""
    found = lookup(key, stale_for=0.0)
    return None if found is None else found[0]


def lookup(key: tuple, *, stale_for: float):
    """``(value, fresh)``, or None. An entry out of date for less than ``stale_for`` seconds is returned
    with ``fresh`` false (kept, so that it can be served while it is being built again); older ones go."""
    entry = _entries.get(key)
    if entry is None:
        return None
    now = time.monotonic()
    due = entry.expires_at
    if entry.changed_at is not None:
        due = min(due, entry.changed_at + (0.0 if entry.exact else settings.PAGE_CACHE_GRACE_SECONDS))
    if due <= now:
        if now - due >= stale_for:
            _remove(key)
            return None
        return entry.value, False
    _entries.move_to_end(key)
    return entry.value, True


def put(key: tuple, value, *, version: float, tags: Iterable[object] = (LISTS,), size: int | None = None,
        expires_at: float | None = None, exact: bool = False) -> None:
    """Store ``value``, built from data read from ``version`` on, showing ``tags``; ``expires_at`` (a
    ``time.monotonic()`` instant) may shorten its life below PAGE_CACHE_SECONDS. ``exact``: never served
    after a change, not even within PAGE_CACHE_GRACE_SECONDS (what a student sees of their own registrations)."""
    global _bytes
    if settings.PAGE_CACHE_SECONDS <= 0:
        return
    tags = tuple(tags)
    size = len(value) if size is None else size
    if size > settings.PAGE_CACHE_MAX_BYTES // 4:
        return  # one page must not push out most of the others
    now = time.monotonic()
    changed_at = _first_change_since(version, tags)
    if changed_at is not None and (exact or now - changed_at >= settings.PAGE_CACHE_GRACE_SECONDS):
        return  # already out of date
    lifetime_end = version + settings.PAGE_CACHE_SECONDS
    if expires_at is not None:
        lifetime_end = min(lifetime_end, expires_at)
    if lifetime_end <= now:
        return
    if key in _entries:
        _remove(key)
    entry = _Entry(value, size, tags, lifetime_end, changed_at, exact)
    _entries[key] = entry
    _bytes += size
    if changed_at is None:
        for tag in tags:
            _clean.setdefault(tag, set()).add(key)
    while _entries and (_bytes > settings.PAGE_CACHE_MAX_BYTES or len(_entries) > MAX_ENTRIES):
        _remove(next(iter(_entries)))


def _first_change_since(moment: float, tags: tuple) -> float | None:
    if moment < _log_floor:
        return moment  # changes of that time may be forgotten: assume the worst
    first = None
    for when, tag in reversed(_log):
        if when < moment:
            break
        if tag == _EVERYTHING or tag in tags:
            first = when
    return first


def _remove(key: tuple) -> None:
    global _bytes
    entry = _entries.pop(key, None)
    if entry is not None:
        _bytes -= entry.size
        if entry.changed_at is None:
            _unindex(key, entry)


def allow(request, *, tags: tuple, expires_at: float | None = None) -> None:
    """The page being rendered for ``request`` is what every visitor without a session gets at this address:
    keep it until one of ``tags`` changes or ``expires_at`` (``time.monotonic()``, see ``monotonic_at``).
    Does nothing for a request that cannot be answered from memory (a session, a POST, the cache off)."""
    ticket = getattr(request, "scope", {}).get(SCOPE_KEY)
    if ticket is not None:
        ticket.allowed, ticket.tags, ticket.expires_at = True, tags, expires_at


def monotonic_at(moment, *, now) -> float:
    """``time.monotonic()`` when the aware datetime ``moment`` comes (``now``: the aware present)."""
    return time.monotonic() + (moment - now).total_seconds()


# How long past its due time a fragment may still be served while one request builds it again (as the
# visitors' stored pages, hyperion/publicpages.py).
_FRAGMENT_STALE_SERVE = 10.0
# The builds in progress, by key: the other requests that need the fragment meanwhile take its result.
_building: dict[tuple, asyncio.Future] = {}


async def fragment(key: tuple, build, *, tags: Iterable[object] = (LISTS,)):
    """The stored fragment for ``key``, or ``await build()``, stored showing ``tags``.

    One build at a time per key and process: while it runs, the other requests get the previous fragment (at
    most ``_FRAGMENT_STALE_SERVE`` seconds past its due time) or, with none, that build's result. A month's
    calendar costs ~40 ms of CPU to build and every registration changes the lists: with 100 ms database
    round trips, each calendar request built its own (a quarter of the server's CPU in the logged-in mix),
    and builds outlasted the grace, so none was kept."""
    found = lookup(key, stale_for=_FRAGMENT_STALE_SERVE)
    if found is not None and (found[1] or key in _building):
        return found[0]
    building = _building.get(key)
    if building is not None:
        value = await asyncio.shield(building)
        if value is not None:
            return value
        # That build failed or was cancelled (its own error went to its own request): build here.
    future = _building[key] = asyncio.get_running_loop().create_future()
    value = None
    try:
        built_from = version()
        value = await build()
        put(key, value, version=built_from, tags=tags)
    finally:
        future.set_result(value)
        if _building.get(key) is future:
            del _building[key]
    return value


def clear() -> None:
    """Forget every entry (tests, whose data changes under the services' feet)."""
    global _bytes, _log_floor
    _entries.clear()
    _building.clear()
    _clean.clear()
    _log.clear()
    _bytes = 0
    _log_floor = 0.0


def stats() -> dict:
    return {"entries": len(_entries), "bytes": _bytes}
