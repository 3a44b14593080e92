"""What a logged-in student's pages read, kept in the process until it changes: their own registrations
(My events, and their state on each event page) and each published event's shared part (its page without the
student's block). A student's event page or My events then costs no query at all.

Kept in the page store (hyperion/pagecache.py), so the same switch (PAGE_CACHE_SECONDS=0), bound and
invalidation apply, and the benchmark reports every page with it on and off:
- an event's shared part shows that event (its tag): any change to it or its seats drops it, in every process
  (the live counter's NOTIFY), and it may lag a change by PAGE_CACHE_GRACE_SECONDS as the visitors' pages do;
  the live counter on the page stays exact;
- a student's registrations show that student and each of their events: dropped at once, with no grace
  ("exact"), by any change to one of those events (a promotion moves their waitlist position) and by a new
  registration of theirs anywhere (broadcast.seats_changed's user news, also through NOTIFY).
A request that follows the student's own action in another process could come before that process heard the
NOTIFY (milliseconds): the action's message cookie marks that request, which then reads the database.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Protocol

from django.contrib.messages.storage.cookie import CookieStorage

from events.catalog import queries as catalog_queries
from events.catalog.queries import EventDetail, MyState
from events.models import RegistrationStatus
from events.registration import queries
from events.registration.queries import MyEventRow
from events.rules import visibility
from hyperion import db, pagecache

# The page store bounds its memory in bytes: a rough size of one kept row (an event's fields and strings).
_ROW_BYTES = 600


def just_acted(request) -> bool:
    """The request follows an action of this student (register, leave, a form): it carries the action's
    message. Read the database, in case this process has not yet heard of the change."""
    return CookieStorage.cookie_name in request.COOKIES


async def my_registrations(user_id: int, *, fresh: bool = False) -> list[MyEventRow]:
    rows = None if fresh else pagecache.get(_mine_key(user_id))
    if rows is None:
        async with db.read_connection() as connection:
            rows = await _my_registrations_read(connection, user_id)
    return rows


def _mine_key(user_id: int) -> tuple:
    return ("my_registrations", user_id)


async def _my_registrations_read(connection, user_id: int) -> list[MyEventRow]:
    built_from = pagecache.version()
    rows = await queries.my_registrations(connection, user_id=user_id)
    tags = (pagecache.user_tag(user_id), *(pagecache.event_tag(row.event.id) for row in rows))
    pagecache.put(_mine_key(user_id), rows, version=built_from, tags=tags, size=_ROW_BYTES * (len(rows) + 1),
                  exact=True)
    return rows


async def event_for_student(slug: str, user_id: int) -> EventDetail | None:
    """The published event ``slug`` with the student's own registration, at most one query: nothing when both
    the event's shared part and the student's registrations are kept, else the one that is missing (and kept
    for next time). None when neither is kept, or the event is not a kept published one: the caller then reads
    the event with the viewer's rights (one query too) and keeps its shared part (``remember_event``)."""
    event, rows = kept_event(slug), pagecache.get(_mine_key(user_id))
    if event is None and rows is None:
        return None
    if event is None:
        async with db.read_connection() as connection:
            built_from = pagecache.version()
            event = await catalog_queries.event_detail(connection, slug=slug, viewer_id=None)
        if event is None or not event.is_published:
            return None
        remember_event(event, built_from=built_from)
    elif rows is None:
        async with db.read_connection() as connection:
            rows = await _my_registrations_read(connection, user_id)
    mine = next((row for row in rows if row.event.id == event.id), None)
    if mine is None:
        return event
    return dataclasses.replace(event, mine=MyState(mine.registration_id, mine.status, mine.waitlist_position,
                                                      mine.offer_expires_at))


def remember_event(event: EventDetail, *, built_from: float) -> None:
    """Keep a published event's shared part (``event`` read since ``built_from``, whoever it was read for)."""
    if event.is_published:
        pagecache.put(_event_key(event.slug), dataclasses.replace(event, mine=None), version=built_from,
                      tags=(pagecache.event_tag(event.id),), size=_ROW_BYTES * 2)


def kept_event(slug: str) -> EventDetail | None:
    """The published event ``slug`` as everyone sees it, if kept (seat counts may lag by the store's grace:
    a registration checks them again under the event's lock)."""
    return pagecache.get(_event_key(slug))


class _Times(Protocol):
    """What the overlap rule reads of the target event (an ``EventDetail``, or an event's row)."""

    @property
    def id(self) -> int: ...

    @property
    def starts_at(self) -> datetime: ...

    @property
    def ends_at(self) -> datetime: ...


def kept_overlaps(user_id: int, event: _Times) -> list[str] | None:
    """Titles of the student's confirmed events going ahead that overlap ``event``, soonest first, from their
    kept registrations (exact: never kept past a change); None when they are not kept. The same rule as
    queries.confirmed_overlaps, which the tests hold it to."""
    rows = pagecache.get(_mine_key(user_id))
    if rows is None:
        return None
    return [row.event.title for row in rows
            if row.status == RegistrationStatus.CONFIRMED and visibility.goes_ahead(row.event.status)
            and row.event.id != event.id and row.event.starts_at < event.ends_at
            and row.event.ends_at > event.starts_at]


def _event_key(slug: str) -> tuple:
    return ("event_detail", slug)
