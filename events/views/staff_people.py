"""The management area's people pages: attendees (list, add, remove, CSV, check-in), associations and
their members, users, and the audit log."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from events import errors, localtime
from events.catalog import presenters
from events.models import RegistrationStatus, Role
from events.registration import services as registration_services
from events.rules import permissions
from events.staff import people as staff_people
from events.staff import queries as staff_queries
from events.staff.forms import AssociationForm, AttendeeAddForm, AuditFilterForm, MemberForm, UserFlagsForm
from events.views.helpers import search_text
from events.views.staff import load_event, management, service_error, staff_only
from hyperion import db


@management
async def attendees(request, event_id: int, *, actor):
    found = await load_event(actor, event_id)
    query = search_text(request.GET.get("q"))
    can_change = permissions.can_change_attendees(actor, association_id=found.event.association_id)
    form = AttendeeAddForm(request.POST or None)
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        if form.is_valid():
            async with db.write_session() as session:
                try:
                    outcome = await staff_people.attendee_add(session, actor=actor, event_id=event_id,
                                                                email=form.cleaned_data["email"])
                except staff_people.UserNotFound as error:
                    form.add_error("email", error.message)
                except (registration_services.AlreadyRegistered, registration_services.RegistrationClosed) as error:
                    form.add_error("email", error.message)
                except errors.DomainError as error:
                    return service_error(request, error, event_id)
                else:
                    if outcome.status == RegistrationStatus.CONFIRMED:
                        messages.success(request, _("Added: the place is confirmed."))
                    else:
                        messages.warning(request, _("The event is full: added to the waitlist, position %(position)d.")
                                         % {"position": outcome.waitlist_position})
                    return redirect("staff_attendees", event_id=event_id)
    async with db.read_session() as session:
        rows = await staff_queries.attendees(session, event_id=event_id, query=query)
    return render(request, "staff/attendees.html", {
        "found": found, "query": query, "form": form, "can_change": can_change,
        "confirmed": [row for row in rows if row.status == RegistrationStatus.CONFIRMED],
        "waitlist": [row for row in rows if row.status == RegistrationStatus.WAITLISTED],
    }, status=400 if form.errors else 200)


@management
async def attendee_remove(request, event_id: int, registration_id: int, *, actor):
    found = await load_event(actor, event_id)
    if not permissions.can_change_attendees(actor, association_id=found.event.association_id):
        raise PermissionDenied
    if request.method == "POST":
        async with db.write_session() as session:
            try:
                promoted = await staff_people.attendee_remove(session, actor=actor, event_id=event_id,
                                                                registration_id=registration_id)
            except errors.DomainError as error:
                return service_error(request, error, event_id)
        messages.success(request, _("Removed.") + (" " + _("%(count)d promoted from the waitlist.")
                                                    % {"count": len(promoted)} if promoted else ""))
        return redirect("staff_attendees", event_id=event_id)
    async with db.read_session() as session:
        rows = await staff_queries.attendees(session, event_id=event_id)
    row = next((row for row in rows if row.registration_id == registration_id), None)
    if row is None:
        raise Http404
    return render(request, "staff/confirm.html", {
        "title": _("Remove this attendee?"),
        "question": _("%(name)s will lose their place at '%(event)s'; the first on the waitlist gets it.")
        % {"name": row.display_name, "event": found.event.title},
        "button": _("Remove"), "back": f"/manage/events/{event_id}/attendees/"})


# Spreadsheets run a cell that starts with one of these as a formula. A spreadsheet may also split a line on
# another separator than ours (French ones pick ';') and then read a piece of a cell as a cell of its own:
# every piece that would start a cell under any usual separator is neutralised with a leading '.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_AFTER_SEPARATOR = re.compile(r"(^|[,;|\t])([ \"]*)(?=[=+\-@\t\r])")


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return _FORMULA_AFTER_SEPARATOR.sub(lambda match: f"{match.group(1)}{match.group(2)}'", text)


@management
async def attendees_csv(request, event_id: int, *, actor):
    found = await load_event(actor, event_id)
    async with db.read_session() as session:
        rows = await staff_queries.attendees(session, event_id=event_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)  # a separator inside a cell never splits it
    writer.writerow([_("Name"), _("E-mail"), _("Promo"), _("Status"), _("Waitlist position"),
                     _("Registered at"), _("Checked in at")])
    for row in rows:
        writer.writerow([csv_cell(value) for value in (
            row.display_name, row.email, row.promo, presenters.registration_status_label(row.status),
            row.waitlist_position,
            localtime.local(row.queued_at).strftime("%Y-%m-%d %H:%M"),
            localtime.local(row.checked_in_at).strftime("%Y-%m-%d %H:%M") if row.checked_in_at else "")])
    # UTF-8 with a BOM: spreadsheet programs then read accents right.
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="attendees-{found.event.slug}.csv"'
    return response


@management
async def check_in(request, event_id: int, *, actor):
    found = await load_event(actor, event_id)
    if not permissions.can_check_in(actor, association_id=found.event.association_id):
        raise PermissionDenied
    query = search_text(request.GET.get("q"))
    async with db.read_session() as session:
        rows = await staff_queries.attendees(session, event_id=event_id, query=query)
    confirmed = [row for row in rows if row.status == RegistrationStatus.CONFIRMED]
    return render(request, "staff/checkin.html", {
        "found": found, "query": query, "rows": confirmed,
        "present": sum(1 for row in confirmed if row.checked_in_at)})


@require_POST
@management
async def check_in_mark(request, event_id: int, registration_id: int, *, actor):
    async with db.write_session() as session:
        try:
            await staff_people.attendee_check_in(session, actor=actor, event_id=event_id,
                                                   registration_id=registration_id,
                                                   present=request.POST.get("present") != "no")
        except errors.DomainError as error:
            return service_error(request, error, event_id)
    query = search_text(request.POST.get("q"))
    return redirect(f"/manage/events/{event_id}/checkin/" + (f"?{urlencode({'q': query})}" if query else ""))


@management
async def associations(request, *, actor):
    async with db.read_session() as session:
        rows = await staff_queries.associations_for(session, actor=actor)
    return render(request, "staff/associations.html", {"rows": rows, "actor": actor})


@management
async def association_edit(request, association_id: int | None = None, *, actor):
    if association_id is None:
        if not actor.is_staff:
            raise PermissionDenied
        initial = {}
    else:
        if not actor.is_manager_of(association_id):
            raise Http404 if actor.role_in(association_id) is None else PermissionDenied
        async with db.read_session() as session:
            row = await staff_queries.association_by_id(session, association_id=association_id)
        if row is None:
            raise Http404
        initial = {"name": row.name, "slug": row.slug, "description": row.description}
    form = AssociationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        async with db.write_session() as session:
            try:
                await staff_people.association_save(session, actor=actor, association_id=association_id,
                                                      **form.cleaned_data)
            except errors.SlugTaken as error:
                form.add_error("slug", error.message)
            except errors.DomainError as error:
                return service_error(request, error)
            else:
                messages.success(request, _("Association saved."))
                return redirect("staff_associations")
    return render(request, "staff/association_form.html", {"form": form, "association_id": association_id},
                  status=400 if form.errors else 200)


@management
async def members(request, association_id: int, *, actor):
    if not actor.is_manager_of(association_id):
        raise Http404 if actor.role_in(association_id) is None else PermissionDenied
    async with db.read_session() as session:
        association = await staff_queries.association_by_id(session, association_id=association_id)
    if association is None:
        raise Http404
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        role = None if form.cleaned_data["role"] == "none" else Role(form.cleaned_data["role"])
        async with db.write_session() as session:
            try:
                await staff_people.role_set(session, actor=actor, association_id=association_id,
                                              email=form.cleaned_data["email"], role=role)
            except staff_people.UserNotFound as error:
                form.add_error("email", error.message)
            except errors.DomainError as error:
                return service_error(request, error)
            else:
                messages.success(request, _("Roles updated."))
                return redirect("staff_members", association_id=association_id)
    async with db.read_session() as session:
        rows = await staff_queries.members(session, association_id=association_id)
    return render(request, "staff/members.html", {"association": association, "rows": rows, "form": form},
                  status=400 if form.errors else 200)


@staff_only
async def users(request, *, actor):
    query = search_text(request.GET.get("q"))
    page = presenters.page_number(request.GET.get("page"))
    async with db.read_session() as session:
        rows, has_next = await staff_queries.users(session, query=query, page=page)
    return render(request, "staff/users.html", {"rows": rows, "query": query, "page": page,
                                                "has_next": has_next})


@require_POST
@staff_only
async def user_flags(request, user_id: int, *, actor):
    form = UserFlagsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Invalid values."))
        return redirect("staff_users")
    if user_id == actor.id and not (form.cleaned_data["is_staff"] and form.cleaned_data["is_active"]):
        messages.error(request, _("You cannot remove your own staff rights or deactivate your own account."))
        return redirect("staff_users")
    async with db.write_session() as session:
        try:
            await staff_people.user_staff_set(session, actor=actor, user_id=user_id, **form.cleaned_data)
        except errors.DomainError as error:
            return service_error(request, error)
    messages.success(request, _("Account updated."))
    return redirect("staff_users")


@staff_only
async def audit(request, *, actor):
    form = AuditFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    page = presenters.page_number(request.GET.get("page"))
    async with db.read_session() as session:
        rows, has_next = await staff_queries.audit_entries(
            session, action=data.get("action") or "", actor_email=data.get("actor") or "",
            object_type=data.get("object_type") or "", object_id=data.get("object_id"), page=page)
    return render(request, "staff/audit.html", {
        "form": form, "rows": rows, "page": page, "has_next": has_next,
        "page_query": presenters.query_without_page(request.GET),
        "local": presenters.moment_label})


@staff_only
async def outbox_failed(request, *, actor):
    async with db.read_session() as session:
        rows = await staff_queries.outbox_failed(session)
    return render(request, "staff/outbox.html", {"rows": rows})


@require_POST
@staff_only
async def outbox_retry(request, outbox_id: int, *, actor):
    async with db.write_session() as session:
        try:
            await staff_people.outbox_retry(session, actor=actor, outbox_id=outbox_id)
        except errors.DomainError as error:
            return service_error(request, error)
    messages.success(request, _("The message will be sent again."))
    return redirect("staff_outbox")
