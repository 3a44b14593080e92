"""The management area's event pages: lists, the approval queue, create / edit / series, lifecycle actions.

Each view loads the actor (user + association roles), lets a service decide, and maps its answer:
``Forbidden`` → 403, not found or another association's object → 404, another rule → a message.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from events import errors, localtime
from events.catalog import presenters
from events.models import EventStatus
from events.rules import lifecycle, permissions, visibility
from events.staff import queries as staff_queries
from events.staff import services as staff_services
from events.staff.forms import EventForm, EventListFilterForm, ReasonForm, SeriesForm
from events.views.helpers import login_required
from hyperion import db


def management(view):
    """Logged in, and staff or editor/manager somewhere; the view gets ``actor``."""

    @login_required
    @wraps(view)
    async def wrapper(request, *args, **kwargs):
        async with db.read_session() as session:
            actor = await staff_queries.actor_for(session, user=request.user)
        if not actor.runs_something:
            raise PermissionDenied
        return await view(request, *args, actor=actor, **kwargs)

    return wrapper


def staff_only(view):
    @management
    @wraps(view)
    async def wrapper(request, *args, actor, **kwargs):
        if not actor.is_staff:
            raise PermissionDenied
        return await view(request, *args, actor=actor, **kwargs)

    return wrapper


async def load_event(actor, event_id: int) -> staff_queries.AdminEvent:
    async with db.read_session() as session:
        found = await staff_queries.admin_event(session, event_id=event_id)
    if found is None or not permissions.can_see_event_admin(actor, association_id=found.event.association_id):
        raise Http404  # another association's event does not exist for this actor
    return found


def service_error(request, error: errors.DomainError, event_id: int | None = None):
    """Map a service's refusal: forbidden → 403, missing → 404, any other rule → a message and back."""
    if isinstance(error, errors.Forbidden):
        raise PermissionDenied from error
    if isinstance(error, errors.EventNotFound | errors.NotFound):
        raise Http404 from error
    messages.error(request, error.message)
    return redirect("staff_event", event_id=event_id) if event_id else redirect("staff_dashboard")


@management
async def dashboard(request, *, actor):
    async with db.read_session() as session:
        associations = await staff_queries.associations_for(session, actor=actor)
        queue = await staff_queries.approval_queue(session) if actor.is_staff else []
    return render(request, "staff/dashboard.html", {"actor": actor, "associations": associations,
                                                    "queue": queue[:5], "queue_count": len(queue)})


@management
async def events_list(request, *, actor):
    async with db.read_session() as session:
        choices = await staff_queries.associations_choices(session, actor=actor)
        form = EventListFilterForm(request.GET or None, associations=choices)
        data = form.cleaned_data if form.is_valid() else {}
        page = presenters.page_number(request.GET.get("page"))
        event_page = await staff_queries.staff_events(
            session, actor=actor, status=EventStatus(data["status"]) if data.get("status") else None,
            association_id=data.get("association"), query=data.get("q") or "", page=page)
    return render(request, "staff/events.html", {"form": form, "event_page": event_page,
                                                 "page_query": presenters.query_without_page(request.GET)})


@management
async def event_new(request, *, actor):
    return await _create(request, actor, series=False)


@management
async def series_new(request, *, actor):
    return await _create(request, actor, series=True)


async def _create(request, actor, *, series: bool):
    async with db.read_session() as session:
        choices = await staff_queries.associations_choices(session, actor=actor)
    if not choices:
        raise PermissionDenied
    form_class = SeriesForm if series else EventForm
    form = form_class(request.POST or None, associations=choices)
    if request.method == "POST" and form.is_valid():
        async with db.write_session() as session:
            try:
                if series:
                    created = await staff_services.event_series_create(
                        session, actor=actor, values=form.values(), every_weeks=form.cleaned_data["every_weeks"],
                        until=form.cleaned_data["until"])
                    messages.success(request, _("%(count)d draft events created.") % {"count": len(created)})
                    return redirect("staff_events")
                event = await staff_services.event_create(session, actor=actor, values=form.values())
            except errors.DomainError as error:
                return service_error(request, error)
        messages.success(request, _("Draft created. Submit it for approval when it is ready."))
        return redirect("staff_event", event_id=event.id)
    return render(request, "staff/event_form.html", {"form": form, "series": series, "event": None},
                  status=400 if form.errors else 200)


@management
async def event_admin(request, event_id: int, *, actor):
    found = await load_event(actor, event_id)
    async with db.read_session() as session:
        history, _more = await staff_queries.audit_entries(session, object_type="event", object_id=event_id)
    event = found.event
    association_id = event.association_id
    return render(request, "staff/event.html", {
        "found": found, "event": event, "history": history,
        "time_label": presenters.time_range_label(event.starts_at, event.ends_at, event.all_day),
        "when_label": presenters.moment_label(event.starts_at),
        "can": {
            "edit": permissions.can_edit_all_fields(actor, association_id=association_id, status=event.status)
            or permissions.can_edit_published(actor, association_id=association_id, status=event.status),
            "submit": lifecycle.can_transition(event.status, "submit")
            and permissions.can_submit(actor, association_id=association_id),
            "review": lifecycle.can_transition(event.status, "approve") and permissions.can_review(actor),
            "cancel": lifecycle.can_transition(event.status, "cancel")
            and permissions.can_cancel(actor, association_id=association_id),
            "delete": permissions.can_delete(actor, association_id=association_id, status=event.status),
            "attendees": visibility.is_published(event.status),
        },
    })


@management
async def event_edit(request, event_id: int, *, actor):
    found = await load_event(actor, event_id)
    event = found.event
    if permissions.can_edit_all_fields(actor, association_id=event.association_id, status=event.status):
        only = None
    elif permissions.can_edit_published(actor, association_id=event.association_id, status=event.status):
        only = lifecycle.PUBLISHED_EDITABLE
    else:
        raise PermissionDenied
    async with db.read_session() as session:
        choices = await staff_queries.associations_choices(session, actor=actor)
    if event.association_id not in dict(choices):
        choices = [*choices, (event.association_id, found.association_name)]
    initial = {name: getattr(event, name) for name in lifecycle.EVENT_FIELDS}
    initial.update({name: localtime.local(initial[name]) for name in
                    ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at",
                     "unregistration_closes_at") if initial[name]})
    form = EventForm(request.POST or None, initial=initial, associations=choices, only=only)
    if request.method == "POST" and form.is_valid():
        async with db.write_session() as session:
            try:
                update = await staff_services.event_update(session, actor=actor, event_id=event_id,
                                                           values=form.values())
            except staff_services.CapacityBelowConfirmed as error:
                form.add_error("capacity", error.message)
            except errors.DomainError as error:
                return service_error(request, error, event_id)
            else:
                if not update.changed:
                    messages.info(request, _("Nothing changed."))
                else:
                    messages.success(request, _("Event saved."))
                    if update.schedule_changed:
                        messages.info(request, _("Registered students see the change on the event page."))
                    if update.promoted_user_ids:
                        messages.info(request, _("%(count)d students promoted from the waitlist.")
                                      % {"count": len(update.promoted_user_ids)})
                return redirect("staff_event", event_id=event_id)
    return render(request, "staff/event_form.html", {"form": form, "series": False, "event": event,
                                                     "published_only": only is not None},
                  status=400 if form.errors else 200)


async def _transition(request, actor, event_id: int, action: str, reason: str = ""):
    async with db.write_session() as session:
        try:
            await staff_services.event_transition(session, actor=actor, event_id=event_id, action=action,
                                                  reason=reason)
        except errors.DomainError as error:
            return service_error(request, error, event_id)
    messages.success(request, {
        "submit": _("Submitted for approval: the staff will review it."),
        "approve": _("Approved: the event is published."),
        "decline": _("Declined: the association sees your reason."),
        "cancel": _("Cancelled: the page stays up with a banner, and calendars show it as cancelled."),
    }[action])
    return None


@require_POST
@management
async def event_submit(request, event_id: int, *, actor):
    return await _transition(request, actor, event_id, "submit") or redirect("staff_event", event_id=event_id)


@require_POST
@management
async def event_approve(request, event_id: int, *, actor):
    return await _transition(request, actor, event_id, "approve") or _back(request, event_id)


def _back(request, event_id: int):
    """After a decision taken from the approval queue, back to the queue; otherwise to the event."""
    if request.POST.get("back") == "queue":
        return redirect("staff_queue")
    return redirect("staff_event", event_id=event_id)


@management
async def event_decline(request, event_id: int, *, actor):
    return await _with_reason(request, actor, event_id, "decline")


@management
async def event_cancel(request, event_id: int, *, actor):
    return await _with_reason(request, actor, event_id, "cancel")


async def _with_reason(request, actor, event_id: int, action: str):
    found = await load_event(actor, event_id)
    allowed = (permissions.can_review(actor) if action == "decline"
               else permissions.can_cancel(actor, association_id=found.event.association_id))
    if not allowed:
        raise PermissionDenied  # the form is not even shown to someone who cannot send it
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        response = await _transition(request, actor, event_id, action, form.cleaned_data["reason"])
        return response or _back(request, event_id)
    return render(request, "staff/reason.html", {"form": form, "found": found, "action": action},
                  status=400 if form.errors else 200)


@management
async def event_delete(request, event_id: int, *, actor):
    found = await load_event(actor, event_id)
    if request.method == "POST":
        async with db.write_session() as session:
            try:
                await staff_services.event_delete(session, actor=actor, event_id=event_id)
            except errors.DomainError as error:
                return service_error(request, error, event_id)
        messages.success(request, _("Event deleted."))
        return redirect("staff_events")
    if not permissions.can_delete(actor, association_id=found.event.association_id, status=found.event.status):
        raise PermissionDenied
    return render(request, "staff/confirm.html", {
        "title": _("Delete this event?"), "question": _("'%(title)s' will be deleted for good.")
        % {"title": found.event.title}, "button": _("Delete"), "back": f"/manage/events/{event_id}/"})


@staff_only
async def approval_queue(request, *, actor):
    async with db.read_session() as session:
        queue = await staff_queries.approval_queue(session)
    return render(request, "staff/queue.html", {"queue": queue, "reason_form": ReasonForm()})
