"""Pages anyone can see: upcoming events (with filters), calendar, event detail, association pages."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from markupsafe import Markup

from events import errors, localtime
from events.accounts import follows
from events.accounts import queries as account_queries
from events.catalog import calendar, directory, members, presenters
from events.catalog import queries as catalog_queries
from events.catalog.forms import EventFilterForm
from events.live import broadcast
from events.models import utcnow
from events.registration import memory
from events.registration import presenters as registration_presenters
from events.registration import queries as registration_queries
from events.registration import questions as registration_questions
from events.rules import attendance, permissions, window
from events.views.helpers import login_required, may_see_or_404, run_service, safe_next, verified_required
from hyperion import db, pagecache
from hyperion.errors import is_database_unavailable


async def home(request):
    """Upcoming events. The content below the navigation depends only on the query string, the language and
    the student's associations that hide events (catalog/members.py), so it is rendered once and served from
    the page cache until something changes."""
    scope = await members.scope(getattr(request.user, "association_ids", ()))
    key = ("home", get_language(), tuple(sorted((name, tuple(values)) for name, values in request.GET.lists())),
           scope)
    content = await pagecache.fragment(key, lambda: _home_content(request, scope))
    pagecache.allow(request, tags=(pagecache.LISTS,))
    return _render_around(request, "events/home.html", {}, content)


async def _home_content(request, scope: tuple[int, ...]) -> bytes:
    form = EventFilterForm(request.GET or None)
    filters = form.filters()
    page = presenters.page_number(request.GET.get("page"))

    async def load_associations():
        async with db.read_connection() as connection:
            return await catalog_queries.associations_all(connection)

    async def load_events():
        async with db.read_connection() as connection:
            return await catalog_queries.events_upcoming(connection, now=utcnow(), filters=filters, page=page,
                                                         tz=localtime.site_zone(), member_of=scope)

    # Independent queries: run at once, each on its own connection (a connection serves one task).
    associations, event_page = await asyncio.gather(load_associations(), load_events())
    return _fragment("events/_home_content.html", {
        "filter_values": form.raw_values(),
        "errors": form.errors,
        "associations": associations,
        "categories": form.category_choices(),
        "days": presenters.group_by_day(event_page.rows, now=utcnow()),
        "event_page": event_page,
        "page_query": presenters.query_without_page(request.GET),
        "filtered": filters != catalog_queries.EventFilters(),
    })


async def event_detail(request, slug: str):
    user = request.user
    now = utcnow()
    event, no_show, answers = await _event_for(request, slug, now)
    # What a visitor without a session sees changes with the event, when its registration opens or closes, and
    # when it ends.
    turns = [moment for moment in (event.registration_opens_at, window.lottery_closes_at(event),
                                   window.registration_closes_at(event), event.ends_at)
             if moment is not None and moment > now]
    pagecache.allow(request, tags=(pagecache.event_tag(event.id),),
                      expires_at=pagecache.monotonic_at(min(turns), now=now) if turns else None)
    # now_iso: the server's clock, for the countdown to an opening (shown to logged-in students only, so that
    # no stored page carries it). A priority group may open registration earlier for a student, a no-show later.
    student = user if user.is_authenticated else None
    return render(request, "events/detail.html", {
        "event": presenters.event_page(event, now=now, student=student, no_show=no_show), "now_iso": now.isoformat(),
        "answers": registration_presenters.answers_box(event, answers, now=now)
        if student is not None and event.questions else None})


async def _event_for(request, slug: str, now):
    """The event as the page shows it to this user (404 if they may not see it), and the student's latest
    no-show at its association while that can delay their opening, and their answers to its questions. A
    student's page from memory when it can be (events/registration/memory.py); visitors without a session get
    the stored page before Django (hyperion/publicpages.py). At most one pooled connection for all the reads."""
    user = request.user
    event = None
    if user.is_authenticated and not memory.just_acted(request):
        event = await memory.event_for_student(slug, user.id)
    if event is not None:
        may_see_or_404(request, event)
        if not (_no_show_matters(user, event, now) or _answers_matter(user, event)):
            return event, None, {}
        async with db.read_connection() as connection:
            return event, *await _student_reads(connection, user, event, now)
    async with db.read_connection() as connection:
        built_from = pagecache.version()
        event = await catalog_queries.event_detail(connection, slug=slug, viewer_id=user.id)
        if event is None:
            raise Http404
        # Roles matter only for an unpublished event: a published one costs one round trip.
        if not event.is_published:
            roles = await account_queries.user_roles(connection, user_id=user.id) if user.is_authenticated else {}
            if not permissions.can_see_unpublished(user, association_id=event.association_id, roles=roles):
                raise Http404  # not 403: an unpublished event's existence is not disclosed
        may_see_or_404(request, event)
        if user.is_authenticated:
            memory.remember_event(event, built_from=built_from)
        no_show, answers = await _student_reads(connection, user, event, now)
    return event, no_show, answers


async def _student_reads(connection, user, event, now) -> tuple[object | None, dict[str, str]]:
    """On the page's one connection: the student's latest no-show while it can delay this event's opening, and
    their answers once they hold a place or wait for one (before that there is nothing to read)."""
    no_show = await _latest_no_show(connection, user, event, now) if _no_show_matters(user, event, now) else None
    answers = await registration_questions.answers_of(connection, event_id=event.id, user_id=user.id) \
        if _answers_matter(user, event) else {}
    return no_show, answers


def _answers_matter(user, event) -> bool:
    return bool(user.is_authenticated and event.questions and event.mine is not None)


def _no_show_matters(user, event, now) -> bool:
    """Read a student's no-shows only while one could delay this event's opening for them (one statement)."""
    return bool(user.is_authenticated and event.is_published and attendance.penalty_window_open(
        event.registration_opens_at, event.no_show_delay_hours, now))


async def _latest_no_show(connection, user, event, now):
    return (await registration_queries.latest_no_shows(
        connection, user_ids=[user.id], association_id=event.association_id, now=now,
        since=attendance.counts_since(event.registration_opens_at, event.no_show_penalty_days),
    )).get(user.id)


async def associations(request):
    """The associations' directory: each with its number of events to come and the next one."""
    async with db.read_connection() as connection:
        rows = await directory.directory(connection, now=(now := utcnow()))
        followed = await _followed(connection, request.user)
    # A visitor's page changes with the lists, and when a next event ends (the one after it comes next).
    ends = [row.next_ends_at for row in rows if row.next_ends_at is not None and row.next_ends_at > now]
    pagecache.allow(request, tags=(pagecache.LISTS,),
                    expires_at=pagecache.monotonic_at(min(ends), now=now) if ends else None)
    return render(request, "events/associations.html", {"rows": rows, "followed": followed})


async def _followed(connection, user) -> set[int]:
    """The associations a logged-in student follows (their follow buttons say so); a visitor follows none."""
    return await follows.followed_ids(connection, user_id=user.id) if user.is_authenticated else set()


@require_POST
@login_required
@verified_required
async def association_follow(request, slug: str):
    """Follow an association, or stop (``follow=no``): its new events by e-mail and in the personal feed."""
    following = request.POST.get("follow") != "no"
    try:
        name = await run_service(follows.follow_set, user_id=request.user.id, association_slug=slug,
                                 following=following)
    except errors.NotFound:
        raise Http404 from None
    messages.success(request, (_("You follow %(name)s: its new events come by e-mail and in your calendar feed.")
                               if following else _("You no longer follow %(name)s.")) % {"name": name})
    return redirect(safe_next(request, "associations"))


async def association_detail(request, slug: str):
    async with db.read_connection() as connection:
        association = await catalog_queries.association_page(connection, slug=slug, now=(now := utcnow()),
                                                             member_of=getattr(request.user, "association_ids", ()))
        followed = await _followed(connection, request.user) if association is not None else set()
    if association is None:
        raise Http404
    pagecache.allow(request, tags=(pagecache.LISTS,))
    return render(request, "events/association.html", {
        "association": association, "following": association.id in followed,
        "upcoming": [presenters.event_card(row, now=now) for row in association.upcoming],
        "past": [presenters.event_card(row, now=now) for row in association.past],
    })


def _fragment(template: str, context: dict) -> bytes:
    """A part of a page that is the same for everyone (per language and day): rendered once, kept as the
    bytes the page will send."""
    return render_to_string(template, context).encode()


# A page around a stored fragment is rendered with this mark where the fragment goes; the fragment's bytes
# then take its place. The fragment (a month's calendar is 180 kB) is thus neither joined into each
# student's page string nor encoded again for each request: ~0.2 ms of a logged-in student's calendar. People's
# texts cannot hold the mark (events.rules.text refuses control characters), and the last mark is taken: the
# texts a page shows around its content (the student's name, messages) come before it.
_FRAGMENT_MARK = "\x00hyperion-fragment\x00"


def _render_around(request, template_name: str, context: dict, fragment: bytes) -> HttpResponse:
    """``render()`` for a page whose ``{{ content }}`` is a stored fragment."""
    mark = Markup(_FRAGMENT_MARK)  # noqa: S704 - a constant  # nosec B704
    page = render_to_string(template_name, {**context, "content": mark}, request)
    before, found, after = page.rpartition(_FRAGMENT_MARK)
    if not found:
        raise ValueError(f"{template_name} does not show its content")
    return HttpResponse(b"".join((before.encode(), fragment, after.encode())))


async def calendar_month(request):
    """The month grid: the same for everyone (per language, day and members' scope), so cached like the home
    page."""
    today = localtime.local(utcnow()).date()
    month = calendar.parse_month(request.GET.get("month"), default=today)
    scope = await members.scope(getattr(request.user, "association_ids", ()))

    async def build() -> bytes:
        grid_start, grid_end = calendar.month_grid_bounds(month)
        async with db.read_connection() as connection:
            rows = await catalog_queries.events_between(connection, start=localtime.day_start(grid_start),
                                                        end=localtime.day_start(grid_end), member_of=scope)
        return _fragment("events/_calendar_month_content.html",
                         {"month": calendar.month_view(month, rows, today=today)})

    content = await pagecache.fragment(("calendar_month", get_language(), month, today, scope), build)
    pagecache.allow(request, tags=(pagecache.LISTS,))
    return _render_around(request, "events/calendar_month.html", {"period_title": date_format(month, "F Y")},
                          content)


async def calendar_week(request):
    today = localtime.local(utcnow()).date()
    monday = calendar.parse_week(request.GET.get("week"), default=today)
    scope = await members.scope(getattr(request.user, "association_ids", ()))

    async def build() -> bytes:
        async with db.read_connection() as connection:
            rows = await catalog_queries.events_between(connection, start=localtime.day_start(monday),
                                                        end=localtime.day_start(monday + timedelta(days=7)),
                                                        member_of=scope)
        return _fragment("events/_calendar_week_content.html",
                         {"week": calendar.week_view(monday, rows, today=today)})

    content = await pagecache.fragment(("calendar_week", get_language(), monday, today, scope), build)
    pagecache.allow(request, tags=(pagecache.LISTS,))
    week = calendar.week_view(monday, [], today=today)
    return _render_around(request, "events/calendar_week.html", {"period_title": week.title}, content)


# Not in the page store (hyperion/pagecache.py): a news is an immutable value, so its encoding is never out of
# date and needs no invalidation; the LRU only bounds memory.
@functools.lru_cache(maxsize=256)  # one encoding per news and language, not one per open page
def _server_sent(news: broadcast.SeatNews, language: str) -> bytes:
    # The counter's text comes made, in the page's language, by the function that rendered the page:
    # the script then has no wording or plural rule of its own to get wrong.
    with translation.override(language):
        text = presenters.seats_counter_label(news.seats, cancelled=news.cancelled)
    return f"event: seats\ndata: {news.as_json(text=text)}\n\n".encode()


def _stream_language(request) -> str:
    """The language of the page that opened the stream (its URL says it): the request's own language can
    differ, e.g. once the visitor picked another language in another tab and the stream reconnects."""
    language = request.GET.get("language")
    if language in {code for code, _name in settings.LANGUAGES}:
        return language
    return get_language() or settings.LANGUAGE_CODE


async def seats_stream(request, slug: str):
    """Server-sent events: the event's seat count, live, for the counter on its page. Holds no database
    connection while it waits: the process's broadcaster re-reads the count once per change for all."""
    async with db.read_connection() as connection:
        event = await catalog_queries.event_detail(connection, slug=slug, viewer_id=None)
    if event is None or not event.is_published:
        raise Http404
    may_see_or_404(request, event)  # a members' event hidden from others: its counter too
    # Subscribed before the first count is read, so that no change falls in between.
    queue = broadcast.broadcaster.subscribe(event.id)
    stream = _seat_news_stream(event.id, queue, _stream_language(request))
    response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


_TICK = object()  # in a stream's queue: time for a keep-alive comment, or to end the stream
_KEEP_ALIVE_SECONDS = 15.0


class _Ticking:
    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


def _tick(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, deadline: float, ticking: _Ticking) -> None:
    # A plain function, and the stream never holds the timer: no reference cycle between a stream, its timer
    # and its callback (cyclic garbage per stream is what the collector's full passes would walk).
    if not ticking.on:
        return
    if queue.empty():
        queue.put_nowait(_TICK)
    now = loop.time()
    if now < deadline:
        loop.call_at(min(now + _KEEP_ALIVE_SECONDS, deadline), _tick, loop, queue, deadline, ticking)


async def _seat_news_stream(event_id: int, queue: asyncio.Queue, language: str):
    """The stream's messages: the count now, then each change, with a keep-alive comment when idle.

    One timer per stream puts a tick in its queue every 15 s (when the queue holds nothing: a news
    replaces a tick, and serves as well) and at the deadline, rather than a timeout armed and cancelled
    around every wait: in a rush each hand-out wakes thousands of streams at once, and a timeout per wake
    was ~8% of the server's CPU (bench/README.md, the rush)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.SSE_MAX_SECONDS
    ticking = _Ticking()
    try:
        yield b"retry: 3000\n\n"
        try:
            news = await broadcast.seat_news(event_id)
        except Exception as error:  # an outage ends the stream; the browser reconnects by itself
            if not is_database_unavailable(error):
                raise
            return
        if news is not None:
            yield _server_sent(news, language)
        loop.call_at(min(loop.time() + _KEEP_ALIVE_SECONDS, deadline), _tick, loop, queue, deadline, ticking)
        while loop.time() < deadline:
            news = await queue.get()
            if news is None:  # the server is shutting down
                return
            if news is _TICK:
                if loop.time() < deadline:
                    yield b": keep-alive\n\n"  # also how a vanished client is noticed
                continue
            yield _server_sent(news, language)
    finally:
        ticking.on = False  # its pending timer, if any, ends the ticks when it fires
        broadcast.broadcaster.unsubscribe(event_id, queue)
