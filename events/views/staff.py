"""The management area's event pages: lists, the approval queue, create / edit / series, lifecycle actions.

Each view reads what its page shows through one loader of ``events.staff.pages`` (one read session: the
actor, i.e. the user and their association roles, then the event and the lists), lets a service decide, and
maps the answer: ``Forbidden`` → 403, not found or another association's object → 404, another rule → a
message.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST, require_safe

from events import errors
from events.catalog import presenters
from events.rules import permissions, restrictions, window
from events.rules import questions as question_rules
from events.staff import pages as staff_pages
from events.staff import queries as staff_queries
from events.staff import services as staff_services
from events.staff import statistics as staff_statistics
from events.staff.forms import EventForm, ReasonForm, SeriesForm
from events.views.helpers import login_required, run_service
from hyperion import db


def management(view):
    """Logged in, and staff or editor/manager somewhere (the session's user row says so: no query). The
    loaders' refusals are answered here: ``Forbidden`` → 403, not found → 404."""

    @login_required
    @wraps(view)
    async def wrapper(request, *args, **kwargs):
        if not request.user.can_manage:
            raise PermissionDenied
        try:
            return await view(request, *args, **kwargs)
        except errors.Forbidden as error:
            raise PermissionDenied from error
        except (errors.EventNotFound, errors.NotFound) as error:
            raise Http404 from error

    return wrapper


def staff_only(view):
    @management
    @wraps(view)
    async def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied
        return await view(request, *args, **kwargs)

    return wrapper


def service_error(request, error: errors.DomainError, event_id: int | None = None):
    """Map a service's refusal: forbidden → 403, missing → 404, any other rule → a message and back."""
    if isinstance(error, errors.Forbidden):
        raise PermissionDenied from error
    if isinstance(error, errors.EventNotFound | errors.NotFound):
        raise Http404 from error
    messages.error(request, error.message)
    return redirect("staff_event", event_id=event_id) if event_id else redirect("staff_dashboard")


def form_status(form) -> int:
    return 400 if form.errors else 200


@management
async def dashboard(request):
    page = await staff_pages.dashboard(request.user)
    return render(request, "staff/dashboard.html", {"actor": page.actor, "associations": page.associations,
                                                    "queue": page.queue[:5], "queue_count": len(page.queue)})


@management
async def events_list(request):
    listing = await staff_pages.event_list(request.user, request.GET,
                                           page=presenters.page_number(request.GET.get("page")))
    return render(request, "staff/events.html", {"form": listing.form, "event_page": listing.event_page,
                                                 "page_query": presenters.query_without_page(request.GET)})


@management
async def event_new(request):
    return await _create(request, series=False)


@management
async def series_new(request):
    return await _create(request, series=True)


async def _create(request, *, series: bool):
    actor, choices = await staff_pages.actor_and_choices(request.user)
    if not choices:
        raise PermissionDenied
    # A copy of an event (?from=<id>, its management page's "Duplicate"; the form posts to the same address):
    # the form starts from its fields, and the new draft asks its questions.
    copied = request.GET.get("from", "")
    copy_of = int(copied) if not series and copied.isdigit() and len(copied) < 10 else None
    initial = await staff_pages.copy_initial(request.user, copy_of) if copy_of is not None else None
    form = (SeriesForm if series else EventForm)(request.POST or None, associations=choices, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if series:
                return await _series_created(request, actor, form)
            return await _event_created(request, actor, form, copy_of)
        except errors.DomainError as error:
            return service_error(request, error)
    return render(request, "staff/event_form.html", {
        "form": form, "series": series, "event": None, "copy_of": initial["title"] if initial else "",
        "copied_questions": len(initial["questions"]) if initial else 0}, status=form_status(form))


async def _event_created(request, actor, form, copy_of: int | None):
    event = await run_service(staff_services.event_create, actor=actor, values=form.values(), copy_of=copy_of)
    messages.success(request, _("Draft created. Submit it for approval when it is ready."))
    return redirect("staff_event", event_id=event.id)


async def _series_created(request, actor, form):
    created = await run_service(staff_services.event_series_create, actor=actor, values=form.values(),
                                every_weeks=form.cleaned_data["every_weeks"], until=form.cleaned_data["until"])
    messages.success(request, _("%(count)d draft events created.") % {"count": len(created)})
    return redirect("staff_events")


@management
async def event_admin(request, event_id: int):
    page = await staff_pages.event_page(request.user, event_id, history=True)
    event = page.found.event
    return render(request, "staff/event.html", {
        "found": page.found, "event": event, "history": page.history,
        "time_label": presenters.time_range_label(event.starts_at, event.ends_at, event.all_day),
        "when_label": presenters.moment_label(event.starts_at),
        "lottery_closes_label": presenters.moment_label(window.lottery_closes_at(event)),
        "lottery_drawn_label": presenters.moment_label(event.lottery_drawn_at),
        "priority_label": presenters.priority_label(event, page.found.association_name),
        "restriction_label": restrictions.label(event, page.found.association_name),
        "can": staff_pages.event_actions(page.actor, event),
    })


@require_safe
@management
async def event_statistics(request, event_id: int):
    page = await staff_pages.event_page(request.user, event_id, figures=True, answers=True, attendees="")
    asked = question_rules.questions_of(page.found.event)
    return render(request, "staff/statistics.html", {
        "found": page.found, "figures": page.figures, "questions": asked, "can_edit": False,
        "counts": question_rules.answer_counts(asked, staff_pages.registrants_answers(page)),
        "chart": staff_statistics.chart_of(page.figures.days if page.figures else [])})


@management
async def event_edit(request, event_id: int):
    page = await staff_pages.event_page(request.user, event_id, choices=True)
    event = page.found.event
    only = staff_pages.editable_fields(page.actor, event)
    form = EventForm(request.POST or None, initial=staff_pages.event_form_initial(event),
                     associations=staff_pages.edit_choices(page), only=only)
    if request.method == "POST" and form.is_valid():
        response = await _event_saved(request, page.actor, event_id, form)
        if response is not None:
            return response
    return render(request, "staff/event_form.html", {"form": form, "series": False, "event": event,
                                                     "published_only": only is not None},
                  status=form_status(form))


async def _event_saved(request, actor, event_id: int, form):
    """Save the edit form: the redirect with what happened, or None when the form now carries the refusal."""
    try:
        update = await run_service(staff_services.event_update, actor=actor, event_id=event_id,
                                   values=form.values())
    except staff_services.CapacityBelowConfirmed as error:
        form.add_error("capacity", error.message)
        return None
    except errors.DomainError as error:
        return service_error(request, error, event_id)
    if not update.changed:
        messages.info(request, _("Nothing changed."))
    else:
        messages.success(request, _("Event saved."))
        if update.schedule_changed:
            messages.info(request, _("Registered students see the change on the event page."))
        if update.promoted_user_ids:
            messages.info(request, _("%(count)d students promoted from the waitlist.")
                          % {"count": len(update.promoted_user_ids)})
        if update.registered_outside:
            messages.warning(request, ngettext(
                "%(count)d student already registered is outside the new rule and keeps their place: remove "
                "them from the attendees if they must not come.",
                "%(count)d students already registered are outside the new rule and keep their place: remove "
                "them from the attendees if they must not come.", update.registered_outside)
                % {"count": update.registered_outside})
    return redirect("staff_event", event_id=event_id)


async def _transition(request, actor, event_id: int, action: str, reason: str = ""):
    try:
        await run_service(staff_services.event_transition, actor=actor, event_id=event_id, action=action,
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
async def event_submit(request, event_id: int):
    actor = await staff_pages.actor_only(request.user)
    return await _transition(request, actor, event_id, "submit") or redirect("staff_event", event_id=event_id)


@require_POST
@management
async def event_approve(request, event_id: int):
    actor = await staff_pages.actor_only(request.user)
    return await _transition(request, actor, event_id, "approve") or _back(request, event_id)


def _back(request, event_id: int):
    """After a decision taken from the approval queue, back to the queue; otherwise to the event."""
    if request.POST.get("back") == "queue":
        return redirect("staff_queue")
    return redirect("staff_event", event_id=event_id)


@management
async def event_decline(request, event_id: int):
    return await _with_reason(request, event_id, "decline")


@management
async def event_cancel(request, event_id: int):
    return await _with_reason(request, event_id, "cancel")


async def _with_reason(request, event_id: int, action: str):
    page = await staff_pages.event_page(request.user, event_id)
    actor, found = page.actor, page.found
    allowed = (permissions.can_review(actor) if action == "decline"
               else permissions.can_cancel(actor, association_id=found.event.association_id))
    if not allowed:
        raise PermissionDenied  # the form is not even shown to someone who cannot send it
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        response = await _transition(request, actor, event_id, action, form.cleaned_data["reason"])
        return response or _back(request, event_id)
    return render(request, "staff/reason.html", {"form": form, "found": found, "action": action},
                  status=form_status(form))


@management
async def event_delete(request, event_id: int):
    page = await staff_pages.event_page(request.user, event_id)
    event = page.found.event
    if request.method == "POST":
        try:
            await run_service(staff_services.event_delete, actor=page.actor, event_id=event_id)
        except errors.DomainError as error:
            return service_error(request, error, event_id)
        messages.success(request, _("Event deleted."))
        return redirect("staff_events")
    if not permissions.can_delete(page.actor, association_id=event.association_id, status=event.status):
        raise PermissionDenied
    return render(request, "staff/confirm.html", {
        "title": _("Delete this event?"), "question": _("'%(title)s' will be deleted for good.")
        % {"title": event.title}, "button": _("Delete"), "back": f"/manage/events/{event_id}/"})


@staff_only
async def approval_queue(request):
    async with db.read_connection() as connection:
        queue = await staff_queries.approval_queue(connection)
    return render(request, "staff/queue.html", {"queue": queue, "reason_form": ReasonForm()})
