"""The benchmarked pages as plain sync Django views: same queries (events.*.queries, run on a sync session),
same presenters, same Jinja2 templates, none of the site's caches (page fragments, built feeds). One
request holds one OS thread from start to end.

Each view mirrors the site's view of the same name (events/views/): when a site view changes what it
renders, change it here too. bench.run compares the pages both stacks answer before the load and warns
when their sizes differ."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseNotFound
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe
from markupsafe import Markup
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bench.baseline import db
from events import localtime
from events.accounts import queries as account_queries
from events.catalog import calendar, presenters
from events.catalog import queries as catalog_queries
from events.catalog.forms import EventFilterForm
from events.errors import DomainError, EventNotFound
from events.feeds import ical
from events.feeds import queries as feed_queries
from events.models import Event, Registration, RegistrationStatus, utcnow
from events.registration import presenters as registration_presenters
from events.registration import queries as registration_queries
from events.registration.leaving import NotRegistered, UnregistrationClosed
from events.registration.services import AlreadyRegistered, RegistrationClosed
from events.rules import permissions
from events.rules.seats import waitlist_position_of
from events.rules.window import registration_is_open, unregistration_is_open
from events.views.feeds import _TOKEN_SHAPE, _calendar_response, _event_url


def home(request):
    form = EventFilterForm(request.GET or None)
    filters = form.filters()
    page = presenters.page_number(request.GET.get("page"))
    with db.read_session() as session:
        associations = db.run(catalog_queries.associations_all, session)
        event_page = db.run(catalog_queries.events_upcoming, session, now=utcnow(), filters=filters, page=page,
                            tz=localtime.site_zone())
    html = render_to_string("events/_home_content.html", {
        "filter_values": form.raw_values(),
        "errors": form.errors,
        "associations": associations,
        "categories": form.category_choices(),
        "days": presenters.group_by_day(event_page.rows, now=utcnow()),
        "event_page": event_page,
        "page_query": presenters.query_without_page(request.GET),
        "filtered": filters != catalog_queries.EventFilters(),
    })
    content = Markup(html)  # noqa: S704 - rendered by the autoescaping template engine
    return render(request, "events/home.html", {"content": content})


def event_detail(request, slug: str):
    user = request.user
    with db.read_session() as session:
        event = db.run(catalog_queries.event_detail, session, slug=slug, viewer_id=user.id)
        if event is None:
            raise Http404
        # As the site: roles matter only for an unpublished event (a published one costs one round trip).
        if not event.is_published:
            roles = db.run(account_queries.user_roles, session, user_id=user.id) if user.is_authenticated else {}
            if not permissions.can_see_unpublished(user, association_id=event.association_id, roles=roles):
                raise Http404
    return render(request, "events/detail.html", {"event": presenters.event_page(event, now=utcnow())})


def calendar_month(request):
    today = localtime.local(utcnow()).date()
    month = calendar.parse_month(request.GET.get("month"), default=today)
    grid_start, grid_end = calendar.month_grid_bounds(month)
    with db.read_session() as session:
        rows = db.run(catalog_queries.events_between, session, start=localtime.day_start(grid_start),
                      end=localtime.day_start(grid_end))
    content = Markup(render_to_string(  # noqa: S704 - rendered by the autoescaping template engine
        "events/_calendar_month_content.html", {"month": calendar.month_view(month, rows, today=today)}))
    return render(request, "events/calendar_month.html",
                  {"content": content, "period_title": date_format(month, "F Y")})


def my_events(request):
    if not request.user.is_authenticated:
        return redirect("login")
    with db.read_session() as session:
        rows = db.run(registration_queries.my_registrations, session, user_id=request.user.id)
    return render(request, "events/my_events.html", registration_presenters.my_events(rows, now=utcnow()))


@require_safe
def feed_personal(request, token: str):
    if not _TOKEN_SHAPE.fullmatch(token):
        raise Http404
    with db.read_session() as session:
        owner = db.run(feed_queries.feed_owner_by_token, session, token=token)
        if owner is None:
            raise Http404
        changed_at = owner.changed_at
        rows = db.run(feed_queries.feed_registrations, session, user_id=owner.id)
    with translation.override(owner.language):
        name = translation.gettext("%(site_name)s - my events") % {"site_name": settings.SITE_NAME}
        body = ical.calendar_registrations(rows, name=name, event_url=_event_url(request))
    return _calendar_response(request, body, changed_at=changed_at, filename="my-events.ics", private=True)


def _event_locked(session, event_id: int) -> Event:
    event = session.execute(select(Event).where(Event.id == event_id).with_for_update()).scalar_one_or_none()
    if event is None:
        raise EventNotFound
    return event


def _published_event(session, user, slug: str):
    """The published event the address names, as the student sees it (404 otherwise)."""
    event = db.run(catalog_queries.event_detail, session, slug=slug, viewer_id=user.id)
    if event is None or not event.is_published:
        raise Http404
    return event


def _register_locked(session, *, event_id: int, user_id: int) -> tuple[RegistrationStatus, int | None]:
    """The site's rule (events.registration.services.registration_create), sync: lock the event row, count the
    confirmed seats under the lock, insert confirmed or waitlisted (queued now, at the lock)."""
    event = _event_locked(session, event_id)
    if not registration_is_open(event, utcnow()):
        raise RegistrationClosed
    existing = session.execute(select(Registration).where(
        Registration.event_id == event_id, Registration.user_id == user_id)).scalar_one_or_none()
    if existing is not None and existing.status != RegistrationStatus.CANCELLED:
        raise AlreadyRegistered
    confirmed = session.execute(select(func.count(Registration.id)).where(
        Registration.event_id == event_id, Registration.status == RegistrationStatus.CONFIRMED)).scalar_one()
    full = event.capacity is not None and confirmed >= event.capacity
    status = RegistrationStatus.WAITLISTED if full else RegistrationStatus.CONFIRMED
    queued_at = utcnow()
    if existing is not None:
        existing.status, existing.queued_at, existing.checked_in_at = status, queued_at, None
        registration_id = existing.id
    else:
        registration_id = session.execute(insert(Registration).returning(Registration.id), {
            "event_id": event_id, "user_id": user_id, "status": status, "queued_at": queued_at,
            "created_at": queued_at, "updated_at": queued_at}).scalar_one()
    session.flush()
    position = None
    if full:
        position = session.execute(select(waitlist_position_of(Registration))
                                   .where(Registration.id == registration_id)).scalar_one()
    return status, position


@require_POST
def register(request, slug: str):
    user = request.user
    if not user.is_authenticated:
        return redirect("login")
    with db.read_session() as session:
        event = _published_event(session, user, slug)
        if request.POST.get("confirm_overlap") != "yes":
            overlaps = db.run(registration_queries.confirmed_overlaps, session, user_id=user.id, slug=slug)
            if overlaps:
                return render(request, "events/register_confirm.html", {
                    "event": presenters.event_page(event, now=utcnow()), "overlaps": overlaps})
    try:
        try:
            with db.write_session() as session, session.begin():
                status, position = _register_locked(session, event_id=event.id, user_id=user.id)
        except IntegrityError as exc:  # the unique (event, user) constraint caught a double submit
            raise AlreadyRegistered from exc
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("event_detail", slug=slug)
    if status == RegistrationStatus.CONFIRMED:
        messages.success(request, _("You are registered: your place is confirmed."))
    else:
        messages.warning(request, _("The event is full: you are on the waitlist, position %(position)d. "
                                    "You will get a place automatically if one frees up.")
                         % {"position": position})
    return redirect("event_detail", slug=slug)


def _leave_locked(session, *, event_id: int, user_id: int) -> RegistrationStatus:
    """The site's rule (events.registration.leaving.registration_leave), sync: lock the event row, cancel the
    student's registration, and give a freed seat to the first in line (no outbox e-mail, no pg_notify)."""
    event = _event_locked(session, event_id)
    registration = session.execute(select(Registration).where(
        Registration.event_id == event_id, Registration.user_id == user_id)).scalar_one_or_none()
    if registration is None or registration.status == RegistrationStatus.CANCELLED:
        raise NotRegistered
    if not unregistration_is_open(event, utcnow()):
        raise UnregistrationClosed
    previous = registration.status
    registration.status = RegistrationStatus.CANCELLED
    session.flush()
    if previous == RegistrationStatus.CONFIRMED and event.capacity is not None:
        confirmed = session.execute(select(func.count(Registration.id)).where(
            Registration.event_id == event_id, Registration.status == RegistrationStatus.CONFIRMED)).scalar_one()
        free = max(0, event.capacity - confirmed)
        if free:
            first = session.execute(select(Registration.id).where(
                Registration.event_id == event_id, Registration.status == RegistrationStatus.WAITLISTED)
                .order_by(Registration.queued_at, Registration.id).limit(free)).scalars().all()
            if first:
                session.execute(update(Registration).where(Registration.id.in_(first))
                                .values(status=RegistrationStatus.CONFIRMED, updated_at=utcnow()))
    return previous


@require_POST
def leave(request, slug: str):
    user = request.user
    if not user.is_authenticated:
        return redirect("login")
    with db.read_session() as session:
        event = _published_event(session, user, slug)
    try:
        with db.write_session() as session, session.begin():
            previous = _leave_locked(session, event_id=event.id, user_id=user.id)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("event_detail", slug=slug)
    if previous == RegistrationStatus.WAITLISTED:
        messages.success(request, _("You have left the waitlist."))
    else:
        messages.success(request, _("You have left this event; your seat has been freed."))
    return redirect("event_detail", slug=slug)


def healthz(request):
    """Mirrors hyperion/health.py (liveness): the cost of a request before any page work."""
    response = HttpResponse(b"ok\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def not_in_baseline(request, *args, **kwargs):
    """Every other page of the site: its URL exists (templates link to it) but the baseline does not serve it."""
    return HttpResponseNotFound(b"not part of the baseline")
