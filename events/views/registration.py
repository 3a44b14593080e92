"""A student's registrations: register (with an overlap warning first), leave, and "My events"."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from events import errors
from events.catalog import presenters
from events.catalog import queries as catalog_queries
from events.models import RegistrationStatus, utcnow
from events.registration import memory
from events.registration import presenters as registration_presenters
from events.registration import services as registration_services
from events.views.helpers import login_required, run_service, verified_required
from hyperion import db


async def _published_event(slug: str, user_id: int):
    """The published event the address names (404 otherwise): from memory when kept, else read."""
    event = memory.kept_event(slug)
    if event is None:
        async with db.read_connection() as connection:
            event = await catalog_queries.event_detail(connection, slug=slug, viewer_id=user_id)
        if event is None or not event.is_published:
            raise Http404
    return event


def _kept_overlaps(slug: str, user_id: int) -> list[str] | None:
    """Titles of the student's confirmed events that the event ``slug`` overlaps, from memory when both the
    event and the student's registrations are kept; None when not (then the service checks, under the lock,
    in the statement that counts the seats)."""
    event = memory.kept_event(slug)
    return memory.kept_overlaps(user_id, event) if event is not None else None


async def _confirm_page(request, slug: str, overlaps: list[str]):
    event = await _published_event(slug, request.user.id)
    return render(request, "events/register_confirm.html", {
        "event": presenters.event_page(event, now=utcnow()), "overlaps": overlaps})


@require_POST
@login_required
@verified_required
async def register(request, slug: str):
    user = request.user
    check_overlaps = False
    if request.POST.get("confirm_overlap") != "yes":
        overlaps = _kept_overlaps(slug, user.id)
        if overlaps:
            return await _confirm_page(request, slug, overlaps)
        check_overlaps = overlaps is None
    # By slug: the service finds the published event under its lock (404 below otherwise), so the POST reads
    # nothing before its transaction.
    try:
        outcome = await run_service(registration_services.registration_create, slug=slug, user_id=user.id,
                                    check_overlaps=check_overlaps)
    except errors.EventNotFound:
        raise Http404 from None
    except registration_services.OverlapsToConfirm as overlapping:
        return await _confirm_page(request, slug, overlapping.titles)
    except errors.DomainError as error:
        messages.error(request, error.message)
        return redirect("event_detail", slug=slug)
    if outcome.status == RegistrationStatus.CONFIRMED:
        messages.success(request, _("You are registered: your place is confirmed."))
    else:
        messages.warning(request, _("The event is full: you are on the waitlist, position %(position)d. "
                                    "You will get a place automatically if one frees up.")
                         % {"position": outcome.waitlist_position})
    return redirect("event_detail", slug=slug)


@require_POST
@login_required
async def leave(request, slug: str):
    event = await _published_event(slug, request.user.id)
    try:
        outcome = await run_service(registration_services.registration_leave, event_id=event.id,
                                    user_id=request.user.id)
    except errors.DomainError as error:
        messages.error(request, error.message)
        return redirect("event_detail", slug=slug)
    if outcome.previous_status == RegistrationStatus.WAITLISTED:
        messages.success(request, _("You have left the waitlist."))
    else:
        messages.success(request, _("You have left this event; your seat has been freed."))
    return redirect("event_detail", slug=slug)


@login_required
async def my_events(request):
    rows = await memory.my_registrations(request.user.id, fresh=memory.just_acted(request))
    return render(request, "events/my_events.html", registration_presenters.my_events(rows, now=utcnow()))
