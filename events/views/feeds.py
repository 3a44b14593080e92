"""The iCalendar feeds calendar clients subscribe to: per event, all, per association or category, personal."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from datetime import datetime, timedelta

from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils import translation
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header, http_date, quote_etag
from django.views.decorators.http import require_safe

from events.catalog.categories import CATEGORIES, category_label
from events.feeds import ical
from events.feeds import queries as feed_queries
from events.models import utcnow
from events.views.helpers import may_see_or_404
from hyperion import db

# Past events stay this long in the public feeds, then leave them so the files stay small.
PUBLIC_FEED_HISTORY = timedelta(days=30)

# Built feeds by what they were built from (scope, language, host, day, last change): calendar clients poll
# unchanged feeds all day, and building an .ics with the icalendar library costs ~10 ms of CPU. The last
# change is read first, so a cached body is never staler than a fresh one would be. Not in the page store
# (hyperion/pagecache.py): the key holds the last change, read from the database, so no invalidation is needed,
# and the store's PAGE_CACHE_SECONDS would rebuild the feeds polled all day.
class _BuiltFeeds:
    """The built bodies, least recently used first out, bounded in bytes as well as in number: a personal
    feed is a few kB, a public one can be hundreds, and the bodies of changed feeds stay until pushed out,
    so a bound in number alone did not bound the worker's memory."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.bodies: OrderedDict[tuple, bytes] = OrderedDict()
        self.size = 0

    def get(self, key: tuple) -> bytes | None:
        body = self.bodies.get(key)
        if body is not None:
            self.bodies.move_to_end(key)
        return body

    def put(self, key: tuple, body: bytes) -> None:
        previous = self.bodies.pop(key, None)
        self.size += len(body) - (len(previous) if previous is not None else 0)
        self.bodies[key] = body
        # The newest stays even when larger than the bound alone (a big site's feed of every event, the
        # costliest to build again): memory stays within the bound plus that one body.
        while len(self.bodies) > 1 and (self.size > self.max_bytes or len(self.bodies) > self.max_entries):
            _key, oldest = self.bodies.popitem(last=False)
            self.size -= len(oldest)

    def clear(self) -> None:
        self.bodies.clear()
        self.size = 0


_built = _BuiltFeeds(max_entries=2048, max_bytes=4 * 1024 * 1024)


def _built_body(key: tuple) -> bytes | None:
    """The body built for ``key``, if any, taken before the rows are read: should another request evict it
    meanwhile, this one still has it (or has read the rows to build it)."""
    return _built.get(key)


def _built_feed(key: tuple, body: bytes | None, build) -> bytes:
    if body is None:
        body = build()
        _built.put(key, body)
    return body


@require_safe
async def event_ics(request, slug: str):
    async with db.read_connection() as connection:
        event = await feed_queries.feed_event_published(connection, slug=slug)
    if event is None:
        raise Http404
    may_see_or_404(request, event)  # a members' event hidden from others: its members' (and not cached shared)
    body = ical.calendar_events([event], name=event.title, event_url=_event_url(request))
    return _calendar_response(request, body, changed_at=event.updated_at, filename=f"{slug}.ics",
                              private=event.hidden_from_others)


@require_safe
async def feed_all(request):
    async with db.read_connection() as connection:
        # The change time before the rows (here and below): a change landing in between then makes the
        # next If-Modified-Since answer 200, never a 304 over stale rows.
        changed_at = await feed_queries.feed_events_changed_at(connection)
        key = ("all", request.get_host(), utcnow().date(), changed_at)
        body = _built_body(key)
        rows = [] if body is not None else await feed_queries.feed_events_published(
            connection, since=utcnow() - PUBLIC_FEED_HISTORY)
    body = _built_feed(key, body, lambda: ical.calendar_events(
        rows, name=settings.SITE_NAME, event_url=_event_url(request)))
    return _calendar_response(request, body, changed_at=changed_at, filename="events.ics")


@require_safe
async def feed_association(request, slug: str):
    async with db.read_connection() as connection:
        association = await feed_queries.association_by_slug(connection, slug=slug)
        if association is None:
            raise Http404
        changed_at = await feed_queries.feed_events_changed_at(connection, association_slug=slug)
        key = ("association", slug, association.name, request.get_host(), utcnow().date(), changed_at)
        body = _built_body(key)
        rows = [] if body is not None else await feed_queries.feed_events_published(
            connection, since=utcnow() - PUBLIC_FEED_HISTORY, association_slug=slug)
    body = _built_feed(key, body, lambda: ical.calendar_events(
        rows, name=f"{settings.SITE_NAME} – {association.name}", event_url=_event_url(request)))
    return _calendar_response(request, body, changed_at=changed_at, filename=f"{slug}.ics")


@require_safe
async def feed_category(request, slug: str):
    if slug not in CATEGORIES:
        raise Http404
    async with db.read_connection() as connection:
        changed_at = await feed_queries.feed_events_changed_at(connection, category=slug)
        language = translation.get_language()
        key = ("category", slug, language, request.get_host(), utcnow().date(), changed_at)
        body = _built_body(key)
        rows = [] if body is not None else await feed_queries.feed_events_published(
            connection, since=utcnow() - PUBLIC_FEED_HISTORY, category=slug)
    body = _built_feed(key, body, lambda: ical.calendar_events(
        rows, name=f"{settings.SITE_NAME} – {category_label(slug)}", event_url=_event_url(request)))
    return _calendar_response(request, body, changed_at=changed_at, filename=f"{slug}.ics")


_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")  # what services.feed_token_regenerate makes


@require_safe
async def feed_personal(request, token: str):
    if not _TOKEN_SHAPE.fullmatch(token):
        raise Http404  # the same answer as an unknown or revoked token
    async with db.read_connection() as connection:
        owner = await feed_queries.feed_owner_by_token(connection, token=token)
        if owner is None:
            raise Http404
        changed_at = owner.changed_at
        key = ("personal", owner.id, owner.language, request.get_host(), changed_at)
        body = _built_body(key)
        rows = [] if body is not None else await feed_queries.feed_registrations(connection, user_id=owner.id)
        followed = [] if body is not None or not owner.follows_events else await feed_queries.feed_followed(
            connection, user_id=owner.id, since=utcnow() - PUBLIC_FEED_HISTORY)

    def build() -> bytes:
        # Calendar clients send no Accept-Language worth trusting: the feed speaks the student's language.
        with translation.override(owner.language):
            name = translation.gettext("%(site_name)s - my events") % {"site_name": settings.SITE_NAME}
            return ical.calendar_registrations(rows, followed=followed, name=name, event_url=_event_url(request))

    body = _built_feed(key, body, build)
    return _calendar_response(request, body, changed_at=changed_at, filename="my-events.ics", private=True)


def _event_url(request) -> ical.EventUrl:
    return lambda slug: request.build_absolute_uri(f"/events/{slug}/")


def _calendar_response(request, body: bytes, *, changed_at: datetime | None, filename: str,
                       private: bool = False) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(False, filename)
    # Not no-store: calendar clients poll, and a personal feed is still only the student's to cache.
    response["Cache-Control"] = "private, max-age=300" if private else "public, max-age=300"
    response["ETag"] = quote_etag(hashlib.sha256(body).hexdigest()[:32])
    last_modified = None
    if changed_at is not None:
        last_modified = int(changed_at.timestamp())
        response["Last-Modified"] = http_date(last_modified)
    return get_conditional_response(request, etag=response["ETag"], last_modified=last_modified,
                                    response=response)
