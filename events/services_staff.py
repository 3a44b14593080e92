"""Writes of the management area: event lifecycle, attendees, associations and roles.

Same habits as services.py: each function owns its transaction, checks permissions and rules inside it,
writes its audit entry in the same transaction, and raises a ``DomainError`` when a rule says no. Seat
changes (capacity, manual add or remove, cancel) lock the event row first, like registrations do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events import event_changes, live, notifications, permissions, series, services
from events.audit import audit_log, diff
from events.models import (
    Association,
    Event,
    EventStatus,
    Membership,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.permissions import Actor
from events.presenters import site_zone
from events.services import DomainError, EventNotFound


class Forbidden(DomainError):
    message = _("You are not allowed to do this.")


class NotFound(DomainError):
    message = _("Not found.")


class IllegalTransition(DomainError):
    message = _("This event cannot go to that state from its current one.")


class CapacityBelowConfirmed(DomainError):
    pass


class SlugTaken(DomainError):
    message = _("This address is already used by another association.")


class UserNotFound(DomainError):
    message = _("No account with this e-mail address.")


# The fields an event form carries; published events only let managers change the PUBLISHED_EDITABLE ones.
EVENT_FIELDS = ("title", "description", "association_id", "category", "location", "starts_at", "ends_at",
                "all_day", "capacity", "registration_opens_at", "registration_closes_at",
                "unregistration_closes_at")
PUBLISHED_EDITABLE = ("starts_at", "ends_at", "all_day", "location", "capacity")


def _event_values(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in EVENT_FIELDS}


def _local_day(moment: datetime) -> date:
    """The day students see (Paris time): an event at 00:30 belongs to its own day, not to UTC's."""
    return moment.astimezone(site_zone()).date()


async def _unique_slug(session: AsyncSession, title: str, day: date) -> str:
    base = (slugify(f"{title} {day:%Y-%m-%d}") or f"event-{day:%Y-%m-%d}")[:110]
    taken = set((await session.execute(select(Event.slug).where(Event.slug.like(f"{base}%")))).scalars())
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


async def _event_for(session: AsyncSession, actor: Actor, event_id: int, *, lock: bool = False) -> Event:
    """The event if the actor may manage it; otherwise it does not exist for them (404)."""
    statement = select(Event).where(Event.id == event_id)
    if lock:
        statement = statement.with_for_update()
    event = (await session.execute(statement)).scalar_one_or_none()
    if event is None or not permissions.can_see_event_admin(actor, association_id=event.association_id):
        raise EventNotFound
    return event


async def event_create(session: AsyncSession, *, actor: Actor, values: dict[str, Any]) -> Event:
    """A new draft of one of the actor's associations."""
    async with session.begin():
        if not actor.is_editor_of(values["association_id"]):
            raise Forbidden
        now = utcnow()
        event = Event(**values, slug=await _unique_slug(session, values["title"], _local_day(values["starts_at"])),
                      status=EventStatus.DRAFT, created_by_id=actor.id, created_at=now, updated_at=now)
        session.add(event)
        await session.flush()
        await audit_log(session, actor_id=actor.id, action="event.created", object_type="event",
                        object_id=event.id, association_id=event.association_id,
                        changes=diff({}, _event_values(event)))
    return event


async def event_series_create(
    session: AsyncSession, *, actor: Actor, values: dict[str, Any], every_weeks: int, until: date,
    max_events: int = 60,
) -> list[Event]:
    """One draft per date, every ``every_weeks`` weeks from the first until ``until`` (inclusive), at the same
    Paris wall-clock time (events/series.py): each event stands alone afterwards (edited, submitted or cancelled
    on its own)."""
    try:
        dates = series.occurrences(starts_at=values["starts_at"], ends_at=values["ends_at"],
                                   every_weeks=every_weeks, until=until, zone=site_zone())
        if len(dates) > max_events:  # refused, never cut short: a series silently missing dates is worse
            raise DomainError(_("A series has %(max)d dates at most.") % {"max": max_events})
        moved = [{name: series.local_weeks_later(value, occurrence.weeks, site_zone())
                  for name, value in values.items()
                  if isinstance(value, datetime) and name not in ("starts_at", "ends_at")} for occurrence in dates]
    except series.OccurrenceTimeInvalid as error:
        raise DomainError(str(error)) from error
    created = []
    async with session.begin():
        if not actor.is_editor_of(values["association_id"]):
            raise Forbidden
        now = utcnow()
        for occurrence, other_dates in zip(dates, moved, strict=True):
            shifted = {**values, **other_dates, "starts_at": occurrence.starts_at, "ends_at": occurrence.ends_at}
            event = Event(**shifted, slug=await _unique_slug(session, values["title"],
                                                             _local_day(occurrence.starts_at)),
                          status=EventStatus.DRAFT, created_by_id=actor.id, created_at=now, updated_at=now)
            session.add(event)
            await session.flush()
            await audit_log(session, actor_id=actor.id, action="event.created", object_type="event",
                            object_id=event.id, association_id=event.association_id,
                            changes={"series": [None, f"every {every_weeks} week(s) until {until.isoformat()}"]})
            created.append(event)
    return created


@dataclass(frozen=True, slots=True)
class EventUpdate:
    changed: dict[str, list[Any]]
    promoted_user_ids: tuple[int, ...] = ()
    schedule_changed: bool = False


async def event_update(session: AsyncSession, *, actor: Actor, event_id: int, values: dict[str, Any]) -> EventUpdate:
    """Edit an event. Drafts and declined events: every field (editors). Published: date, place and capacity
    (managers, staff); capacity never below the confirmed count, and raising it promotes from the waitlist."""
    async with session.begin():
        event = await _event_for(session, actor, event_id, lock=True)
        if permissions.can_edit_all_fields(actor, association_id=event.association_id, status=event.status):
            allowed = EVENT_FIELDS
            if values.get("association_id", event.association_id) != event.association_id and \
                    not actor.is_editor_of(values["association_id"]):
                raise Forbidden
        elif permissions.can_edit_published(actor, association_id=event.association_id, status=event.status):
            allowed = PUBLISHED_EDITABLE
        else:
            raise Forbidden
        before = _event_values(event)
        new_values = {name: value for name, value in values.items() if name in allowed}
        changes = diff(before, {**before, **new_values})
        if not changes:
            return EventUpdate(changed={})
        confirmed = await services.confirmed_count(session, event_id=event.id)
        new_capacity = new_values.get("capacity", event.capacity)
        if new_capacity is not None and new_capacity < confirmed:
            raise CapacityBelowConfirmed(
                _("%(count)d students are confirmed: the capacity cannot go below %(count)d. Remove attendees "
                  "first if you must.") % {"count": confirmed})
        for name, value in new_values.items():
            setattr(event, name, value)
        event.updated_at = utcnow()
        schedule_changed = await event_changes.event_schedule_changed(session, event=event, changed_fields=changes)
        if not schedule_changed and event.status == EventStatus.APPROVED and "capacity" in changes:
            event.changed_at = utcnow()  # its registrants see that the seats changed
        await session.flush()
        promoted = await services.waitlist_promote_locked(session, event)
        await live.seats_changed(session, event_id=event.id)
        await audit_log(session, actor_id=actor.id, action="event.updated", object_type="event",
                        object_id=event.id, association_id=event.association_id, changes=changes)
    return EventUpdate(changed=changes, promoted_user_ids=promoted, schedule_changed=schedule_changed)


# Lifecycle: the one table of legal transitions.
AUDIT_ACTIONS = {"submit": "event.submitted", "approve": "event.approved", "decline": "event.declined",
                 "cancel": "event.cancelled"}
TRANSITIONS = {
    "submit": ({EventStatus.DRAFT, EventStatus.DECLINED}, EventStatus.SUBMITTED),
    "approve": ({EventStatus.SUBMITTED}, EventStatus.APPROVED),
    "decline": ({EventStatus.SUBMITTED}, EventStatus.DECLINED),
    "cancel": ({EventStatus.APPROVED}, EventStatus.CANCELLED),
}


async def event_transition(
    session: AsyncSession, *, actor: Actor, event_id: int, action: str, reason: str = ""
) -> Event:
    """submit (editors), approve / decline (staff, decline with a reason), cancel (managers, with a reason)."""
    sources, target = TRANSITIONS[action]
    async with session.begin():
        event = await _event_for(session, actor, event_id, lock=True)
        allowed = {
            "submit": permissions.can_submit(actor, association_id=event.association_id),
            "approve": permissions.can_review(actor),
            "decline": permissions.can_review(actor),
            "cancel": permissions.can_cancel(actor, association_id=event.association_id),
        }[action]
        if not allowed:
            raise Forbidden
        if event.status not in sources:
            raise IllegalTransition
        before = event.status
        now = utcnow()
        event.status = target
        event.updated_at = now
        if action == "submit":
            event.submitted_at = now
            event.decision_reason = ""
        elif action in ("decline", "cancel"):
            event.decision_reason = reason.strip()
        elif action == "approve":
            event.decision_reason = ""
        await session.flush()
        await live.seats_changed(session, event_id=event.id)  # the public list and counters change
        if action == "cancel":
            await event_changes.event_cancelled(session, event=event)
        elif action in ("approve", "decline"):
            recipients = set(await notifications.association_editors(session, association_id=event.association_id))
            if event.created_by_id:
                recipients.add(event.created_by_id)
            recipients.discard(actor.id)
            await notifications.notify(session, kind=f"event.{'approved' if action == 'approve' else 'declined'}",
                                       recipient_ids=sorted(recipients), event_id=event.id)
        await audit_log(session, actor_id=actor.id, action=AUDIT_ACTIONS[action], object_type="event",
                        object_id=event.id, association_id=event.association_id,
                        changes={"status": [before.value, target.value],
                                 **({"reason": [None, reason.strip()]} if reason.strip() else {})})
    return event


async def event_delete(session: AsyncSession, *, actor: Actor, event_id: int) -> None:
    async with session.begin():
        event = await _event_for(session, actor, event_id, lock=True)
        if not permissions.can_delete(actor, association_id=event.association_id, status=event.status):
            raise Forbidden
        await audit_log(session, actor_id=actor.id, action="event.deleted", object_type="event",
                        object_id=event.id, association_id=event.association_id,
                        changes={"title": [event.title, None], "status": [event.status.value, None]})
        await session.execute(delete(Event).where(Event.id == event.id))


# Attendees.

async def attendee_add(
    session: AsyncSession, *, actor: Actor, event_id: int, email: str
) -> services.RegistrationOutcome:
    """Staff or a manager registers a student by e-mail (seats and waitlist as for anyone, any time)."""
    async with session.begin():
        event = await _event_for(session, actor, event_id, lock=True)
        if not permissions.can_change_attendees(actor, association_id=event.association_id):
            raise Forbidden
        if event.status != EventStatus.APPROVED:
            raise services.RegistrationClosed
        user_id = (await session.execute(select(User.id).where(
            User.email == services.normalize_email(email), User.is_active.is_(True)))).scalar_one_or_none()
        if user_id is None:
            raise UserNotFound
        outcome = await services.registration_place_locked(session, event=event, user_id=user_id)
        await audit_log(session, actor_id=actor.id, action="registration.added", object_type="registration",
                        object_id=outcome.registration_id, association_id=event.association_id,
                        changes={"event_id": [None, event.id], "user_id": [None, user_id],
                                 "status": [None, outcome.status.value]})
    return outcome


async def attendee_remove(
    session: AsyncSession, *, actor: Actor, event_id: int, registration_id: int
) -> tuple[int, ...]:
    """Remove a student (confirmed or waitlisted); a freed seat goes to the first in line."""
    async with session.begin():
        event = await _event_for(session, actor, event_id, lock=True)
        if not permissions.can_change_attendees(actor, association_id=event.association_id):
            raise Forbidden
        registration = (await session.execute(select(Registration).where(
            Registration.id == registration_id, Registration.event_id == event.id))).scalar_one_or_none()
        if registration is None or registration.status == RegistrationStatus.CANCELLED:
            raise NotFound
        before = registration.status
        registration.status = RegistrationStatus.CANCELLED
        await session.flush()
        await notifications.reminders_drop(session, event_id=event.id, user_id=registration.user_id)
        await notifications.notify(session, kind="registration.removed", recipient_ids=[registration.user_id],
                                   event_id=event.id)
        promoted = await services.waitlist_promote_locked(session, event)
        await live.seats_changed(session, event_id=event.id)
        await audit_log(session, actor_id=actor.id, action="registration.removed", object_type="registration",
                        object_id=registration.id, association_id=event.association_id,
                        changes={"status": [before.value, "cancelled"], "user_id": [registration.user_id, None],
                                 "promoted_user_ids": [None, list(promoted)]})
    return promoted


async def attendee_check_in(
    session: AsyncSession, *, actor: Actor, event_id: int, registration_id: int, present: bool = True
) -> None:
    async with session.begin():
        event = await _event_for(session, actor, event_id)
        if not permissions.can_check_in(actor, association_id=event.association_id):
            raise Forbidden
        registration = (await session.execute(select(Registration).where(
            Registration.id == registration_id, Registration.event_id == event.id,
            Registration.status == RegistrationStatus.CONFIRMED))).scalar_one_or_none()
        if registration is None:
            raise NotFound
        before = registration.checked_in_at
        registration.checked_in_at = utcnow() if present else None
        await audit_log(session, actor_id=actor.id, action="registration.checked_in" if present else
                        "registration.check_in_undone", object_type="registration", object_id=registration.id,
                        association_id=event.association_id,
                        changes={"checked_in_at": [before, registration.checked_in_at]})


# Associations and roles.

async def association_save(
    session: AsyncSession, *, actor: Actor, association_id: int | None, slug: str, name: str, description: str
) -> int:
    """Create (staff) or edit (staff, or the association's managers) an association."""
    try:
        async with session.begin():
            if association_id is None:
                if not actor.is_staff:
                    raise Forbidden
                association_id = (await session.execute(insert(Association).returning(Association.id), {
                    "slug": slug, "name": name, "description": description, "created_at": utcnow()})).scalar_one()
                await audit_log(session, actor_id=actor.id, action="association.created",
                                object_type="association", object_id=association_id, association_id=association_id,
                                changes={"slug": [None, slug], "name": [None, name]})
                return association_id
            association = await session.get(Association, association_id, with_for_update=True)
            if association is None or not actor.is_manager_of(association_id):
                raise NotFound
            changes = diff({"slug": association.slug, "name": association.name,
                            "description": association.description},
                           {"slug": slug, "name": name, "description": description})
            association.slug, association.name, association.description = slug, name, description
            await session.flush()
            await live.seats_changed(session, event_id=0)  # its name shows in the cached public list
            if changes:
                await audit_log(session, actor_id=actor.id, action="association.updated",
                                object_type="association", object_id=association_id, association_id=association_id,
                                changes=changes)
            return association_id
    except IntegrityError as exc:
        raise SlugTaken from exc


async def role_set(
    session: AsyncSession, *, actor: Actor | None, association_id: int, email: str, role: Role | None
) -> int:
    """Give ``role`` (member, editor, manager) in an association to the account with ``email``, or remove the
    membership (``role=None``). ``actor=None`` is the operator's command line (manage.py setrole)."""
    async with session.begin():
        if actor is not None and not permissions.can_manage_members(actor, association_id=association_id):
            raise Forbidden
        if (await session.get(Association, association_id)) is None:
            raise NotFound
        user_id = (await session.execute(select(User.id).where(
            User.email == services.normalize_email(email), User.is_active.is_(True),
            User.anonymised_at.is_(None)))).scalar_one_or_none()
        if user_id is None:
            raise UserNotFound
        membership = (await session.execute(select(Membership).where(
            Membership.user_id == user_id, Membership.association_id == association_id))).scalar_one_or_none()
        before = membership.role.value if membership else None
        if role is None:
            if membership is not None:
                await session.delete(membership)
        elif membership is None:
            session.add(Membership(user_id=user_id, association_id=association_id, role=role, created_at=utcnow()))
        else:
            membership.role = role
        after = role.value if role else None
        if before != after:
            await session.flush()
            await audit_log(session, actor_id=actor.id if actor else None,
                            action="membership.removed" if role is None else "membership.role_set",
                            object_type="user", object_id=user_id, association_id=association_id,
                            changes={"role": [before, after]})
    return user_id


async def user_staff_set(session: AsyncSession, *, actor: Actor, user_id: int, is_staff: bool, is_active: bool) -> None:
    async with session.begin():
        if not actor.is_staff:
            raise Forbidden
        user = await session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound
        changes = diff({"is_staff": user.is_staff, "is_active": user.is_active},
                       {"is_staff": is_staff, "is_active": is_active})
        user.is_staff, user.is_active = is_staff, is_active
        if changes:
            await audit_log(session, actor_id=actor.id, action="user.updated", object_type="user",
                            object_id=user_id, changes=changes)



async def outbox_retry(session: AsyncSession, *, actor: Actor, outbox_id: int) -> None:
    """Send a failed message again (staff, from the failed-messages page)."""
    async with session.begin():
        if not actor.is_staff:
            raise Forbidden
        message = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        if message is None or message.status != OutboxStatus.FAILED:
            raise NotFound
        message.status, message.attempts, message.send_after = OutboxStatus.PENDING, 0, utcnow()
        await audit_log(session, actor_id=actor.id, action="outbox.retried", object_type="outbox",
                        object_id=outbox_id, changes={"status": ["failed", "pending"],
                                                      "last_error": [message.last_error, None]})
