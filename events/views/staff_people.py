"""The management area's people pages: attendees (list, add, remove, CSV, check-in), associations and
their members, users, and the audit log."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from events import errors
from events.catalog import presenters
from events.models import RegistrationStatus, Role
from events.notifications import messages as notification_messages
from events.registration import services as registration_services
from events.rules import permissions, visibility
from events.rules import questions as question_rules
from events.staff import export as staff_export
from events.staff import mailing
from events.staff import pages as staff_pages
from events.staff import people as staff_people
from events.staff import queries as staff_queries
from events.staff.people_forms import (
    AssociationForm,
    AttendeeAddForm,
    AttendeesMessageForm,
    CheckInScanForm,
    MemberForm,
    UserFlagsForm,
)
from events.views.helpers import run_service, search_text
from events.views.staff import form_status, management, service_error, staff_only
from hyperion import db


@management
async def attendees(request, event_id: int):
    query = search_text(request.GET.get("q"))
    page = await staff_pages.event_page(request.user, event_id, attendees=query, answers=True)
    can_change = permissions.can_change_attendees(page.actor, association_id=page.found.event.association_id)
    form = AttendeeAddForm(request.POST or None)
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        if form.is_valid() and (response := await _attendee_added(request, page.actor, event_id, form)):
            return response
    asked = question_rules.questions_of(page.found.event)
    return render(request, "staff/attendees.html", {
        "found": page.found, "query": query, "form": form, "can_change": can_change, "questions": asked,
        "answers": {user_id: [(question.label, question.shown(given.get(question.id))) for question in asked]
                    for user_id, given in page.answers.items()},
        "counts": question_rules.answer_counts(asked, staff_pages.registrants_answers(page)) if not query else None,
        "can_see_statistics": permissions.can_see_statistics(page.actor,
                                                             association_id=page.found.event.association_id),
        "confirmed": [row for row in page.attendees if row.status == RegistrationStatus.CONFIRMED],
        "offered": [row for row in page.attendees if row.status == RegistrationStatus.OFFERED],
        "waitlist": [row for row in page.attendees if row.status == RegistrationStatus.WAITLISTED],
        "expired": [row for row in page.attendees if row.status == RegistrationStatus.EXPIRED],
    }, status=form_status(form))


async def _attendee_added(request, actor, event_id: int, form):
    """Add the student the form names: the redirect with where they landed, or None when the form now
    carries the refusal."""
    try:
        outcome = await run_service(staff_people.attendee_add, actor=actor, event_id=event_id,
                                    email=form.cleaned_data["email"])
    except (staff_people.UserNotFound, registration_services.AlreadyRegistered,
            registration_services.RegistrationClosed) as error:
        form.add_error("email", error.message)
        return None
    except errors.DomainError as error:
        return service_error(request, error, event_id)
    if outcome.status == RegistrationStatus.CONFIRMED:
        messages.success(request, _("Added: the place is confirmed."))
    else:
        messages.warning(request, _("The event is full: added to the waitlist, position %(position)d.")
                         % {"position": outcome.waitlist_position})
    return redirect("staff_attendees", event_id=event_id)


@management
async def attendee_remove(request, event_id: int, registration_id: int):
    asking = request.method != "POST"
    page = await staff_pages.event_page(request.user, event_id, attendees="" if asking else None)
    if not permissions.can_change_attendees(page.actor, association_id=page.found.event.association_id):
        raise PermissionDenied
    if not asking:
        try:
            promoted = await run_service(staff_people.attendee_remove, actor=page.actor, event_id=event_id,
                                         registration_id=registration_id)
        except errors.DomainError as error:
            return service_error(request, error, event_id)
        messages.success(request, _("Removed.") + (" " + _("%(count)d promoted from the waitlist.")
                                                    % {"count": len(promoted)} if promoted else ""))
        return redirect("staff_attendees", event_id=event_id)
    row = next((row for row in page.attendees if row.registration_id == registration_id), None)
    if row is None:
        raise Http404
    return render(request, "staff/confirm.html", {
        "title": _("Remove this attendee?"),
        "question": _("%(name)s will lose their place at '%(event)s'; the first on the waitlist gets it.")
        % {"name": row.display_name, "event": page.found.event.title},
        "button": _("Remove"), "back": f"/manage/events/{event_id}/attendees/"})


@management
async def attendees_message(request, event_id: int):
    """Write to the registrants: the form, then a preview of the e-mail (POST), then the sending (POST
    ``action=send`` with the preview's key)."""
    page = await staff_pages.event_page(request.user, event_id, reach=True)
    if not permissions.can_message_attendees(page.actor, association_id=page.found.event.association_id):
        raise PermissionDenied
    if not visibility.goes_ahead(page.found.event.status):
        return service_error(request, mailing.EventNotGoingAhead(), event_id)
    form = AttendeesMessageForm(request.POST or None, reach=page.reach)
    context = {"found": page.found, "form": form}
    if request.method == "POST" and form.is_valid():
        fields = form.cleaned_data
        if request.POST.get("action") == "send" and fields["send_key"]:
            return await _message_sent(request, page.actor, event_id, fields)
        if request.POST.get("action") != "edit":
            email = notification_messages.organisers_message_preview(
                event=page.found.event, association_name=page.found.association_name, subject=fields["subject"],
                body=fields["body"])
            context.update(preview=email.get_body(preferencelist=("plain",)).get_content(),  # type: ignore[union-attr]
                           preview_subject=email["Subject"], send_key=secrets.token_hex(16),
                           reach=page.reach[mailing.Audience(fields["audience"])])
    return render(request, "staff/message.html", context, status=form_status(form))


async def _message_sent(request, actor, event_id: int, fields: dict):
    try:
        written = await run_service(mailing.attendees_message, actor=actor, event_id=event_id,
                                    audience=mailing.Audience(fields["audience"]), subject=fields["subject"],
                                    body=fields["body"], send_key=fields["send_key"])
    except errors.DomainError as error:
        return service_error(request, error, event_id)
    messages.success(request, ngettext("The message goes out to %(count)d person.",
                                       "The message goes out to %(count)d people.", written) % {"count": written})
    return redirect("staff_event", event_id=event_id)


@management
async def attendees_csv(request, event_id: int):
    page = await staff_pages.event_page(request.user, event_id, attendees="", answers=True)
    response = HttpResponse(staff_export.attendees_csv(
        page.attendees, questions=question_rules.questions_of(page.found.event), answers=page.answers),
        content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="attendees-{page.found.event.slug}.csv"'
    return response


@management
async def check_in(request, event_id: int):
    return await _check_in_page(request, event_id, CheckInScanForm())


async def _check_in_page(request, event_id: int, scan: CheckInScanForm):
    """The door's page: the ticket form (400 with its error when ``scan`` is a refused one), the search, the
    confirmed attendees."""
    query = search_text(request.GET.get("q"))
    page = await staff_pages.event_page(request.user, event_id, attendees=query)
    if not permissions.can_check_in(page.actor, association_id=page.found.event.association_id):
        raise PermissionDenied
    confirmed = [row for row in page.attendees if row.status == RegistrationStatus.CONFIRMED]
    response = render(request, "staff/checkin.html", {
        "found": page.found, "query": query, "rows": confirmed, "scan": scan,
        "present": sum(1 for row in confirmed if row.checked_in_at)}, status=form_status(scan))
    # The ticket scanner films with the phone's camera: allowed on this page only (every other page denies it).
    response["Permissions-Policy"] = settings.PERMISSIONS_POLICY.replace("camera=()", "camera=(self)")
    return response


@require_POST
@management
async def check_in_mark(request, event_id: int, registration_id: int):
    """A click on "Present" (or "Undo") beside a name at the door."""
    actor = await staff_pages.actor_only(request.user)
    try:
        checked = await run_service(staff_people.attendee_check_in, actor=actor, event_id=event_id,
                                    registration_id=registration_id, present=request.POST.get("present") != "no")
    except staff_people.CheckInClosed as error:
        messages.error(request, error.message)
    except errors.DomainError as error:
        return service_error(request, error, event_id)
    else:
        _check_in_told(request, checked)
    query = search_text(request.POST.get("q"))
    return redirect(f"/manage/events/{event_id}/checkin/" + (f"?{urlencode({'q': query})}" if query else ""))


@require_POST
@management
async def check_in_scan(request, event_id: int):
    """A ticket scanned (the camera fills the code in) or typed at the door."""
    form = CheckInScanForm(request.POST)
    if not form.is_valid():
        return await _check_in_page(request, event_id, form)
    actor = await staff_pages.actor_only(request.user)
    try:
        scan = await run_service(staff_people.ticket_check_in, actor=actor, event_id=event_id,
                                 code=form.cleaned_data["code"])
    except (staff_people.TicketNotValid, staff_people.TicketOtherEvent, staff_people.TicketNotConfirmed,
            staff_people.CheckInClosed) as error:
        messages.error(request, error.message)
    except errors.DomainError as error:
        return service_error(request, error, event_id)
    else:
        _check_in_told(request, scan)
    return redirect("staff_checkin", event_id=event_id)


def _check_in_told(request, checked: staff_people.TicketScan | None) -> None:
    """What the door reads after a scan or a click: checked in now, or already and since when (None: undone)."""
    if checked is None:
        return
    when = presenters.clock_label(checked.checked_in_at)
    if checked.already:
        messages.warning(request, _("%(name)s was already checked in at %(time)s.")
                         % {"name": checked.display_name, "time": when})
    else:
        messages.success(request, _("%(name)s is checked in (%(time)s).") % {"name": checked.display_name,
                                                                             "time": when})


@management
async def associations(request):
    listing = await staff_pages.association_list(request.user)
    return render(request, "staff/associations.html", {"rows": listing.rows, "actor": listing.actor})


@management
async def association_edit(request, association_id: int | None = None):
    page = await staff_pages.association_page(request.user, association_id)
    row = page.association
    initial = {} if row is None else {"name": row.name, "slug": row.slug, "description": row.description,
                                      "no_show_delay_hours": row.no_show_delay_hours,
                                      "no_show_penalty_days": row.no_show_penalty_days}
    form = AssociationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            await run_service(staff_people.association_save, actor=page.actor, association_id=association_id,
                              **form.cleaned_data)
        except errors.SlugTaken as error:
            form.add_error("slug", error.message)
        except errors.DomainError as error:
            return service_error(request, error)
        else:
            messages.success(request, _("Association saved."))
            return redirect("staff_associations")
    return render(request, "staff/association_form.html", {"form": form, "association_id": association_id},
                  status=form_status(form))


@management
async def members(request, association_id: int):
    page = await staff_pages.association_page(request.user, association_id, members=True)
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        role = None if form.cleaned_data["role"] == "none" else Role(form.cleaned_data["role"])
        try:
            await run_service(staff_people.role_set, actor=page.actor, association_id=association_id,
                              email=form.cleaned_data["email"], role=role)
        except staff_people.UserNotFound as error:
            form.add_error("email", error.message)
        except errors.DomainError as error:
            return service_error(request, error)
        else:
            messages.success(request, _("Roles updated."))
            return redirect("staff_members", association_id=association_id)
    return render(request, "staff/members.html", {"association": page.association, "rows": page.members,
                                                  "form": form}, status=form_status(form))


@staff_only
async def users(request):
    query = search_text(request.GET.get("q"))
    page = presenters.page_number(request.GET.get("page"))
    async with db.read_connection() as connection:
        rows, has_next = await staff_queries.users(connection, query=query, page=page)
    return render(request, "staff/users.html", {"rows": rows, "query": query, "page": page,
                                                "has_next": has_next})


@require_POST
@staff_only
async def user_flags(request, user_id: int):
    form = UserFlagsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Invalid values."))
        return redirect("staff_users")
    if user_id == request.user.id and not (form.cleaned_data["is_staff"] and form.cleaned_data["is_active"]):
        messages.error(request, _("You cannot remove your own staff rights or deactivate your own account."))
        return redirect("staff_users")
    actor = await staff_pages.actor_only(request.user)
    try:
        await run_service(staff_people.user_staff_set, actor=actor, user_id=user_id, **form.cleaned_data)
    except errors.DomainError as error:
        return service_error(request, error)
    messages.success(request, _("Account updated."))
    return redirect("staff_users")


@staff_only
async def audit(request):
    page = presenters.page_number(request.GET.get("page"))
    entries = await staff_pages.audit_page(request.GET, page=page)
    return render(request, "staff/audit.html", {
        "form": entries.form, "rows": entries.rows, "page": page, "has_next": entries.has_next,
        "page_query": presenters.query_without_page(request.GET),
        "local": presenters.moment_label})


@staff_only
async def outbox_failed(request):
    async with db.read_connection() as connection:
        rows = await staff_queries.outbox_failed(connection)
    return render(request, "staff/outbox.html", {"rows": rows})


@require_POST
@staff_only
async def outbox_retry(request, outbox_id: int):
    actor = await staff_pages.actor_only(request.user)
    try:
        await run_service(staff_people.outbox_retry, actor=actor, outbox_id=outbox_id)
    except errors.DomainError as error:
        return service_error(request, error)
    messages.success(request, _("The message will be sent again."))
    return redirect("staff_outbox")
