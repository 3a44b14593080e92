"""Writes of the management area about people: attendees added, removed and checked in, associations and
their members' roles, staff flags, and the outbox's retry. Same habits as ``events.staff.services``: each
function owns its transaction, checks permissions inside it and writes its audit entry in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext_lazy as _
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.audit import audit_log, diff
from events.errors import DomainError, Forbidden, NotFound, SlugTaken
from events.live import broadcast
from events.models import (
    Association,
    Event,
    Membership,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.registration import promotions
from events.registration import services as registration_services
from events.rules import attendance, emails, permissions, tickets, visibility
from events.rules.permissions import Actor
from events.staff.services import event_for_actor


class UserNotFound(DomainError):
    message = _("No account with this e-mail address.")


async def attendee_add(
    session: AsyncSession, *, actor: Actor, event_id: int, email: str
) -> registration_services.RegistrationOutcome:
    """Staff or a manager registers a student by e-mail (seats and waitlist as for anyone, any time)."""
    async with session.begin():
        event = await event_for_actor(session, actor, event_id, lock=True)
        if not permissions.can_change_attendees(actor, association_id=event.association_id):
            raise Forbidden
        if not visibility.goes_ahead(event.status):
            raise registration_services.RegistrationClosed
        user_id = (await session.execute(select(User.id).where(
            User.email == emails.normalize_email(email), User.is_active.is_(True)))).scalar_one_or_none()
        if user_id is None:
            raise UserNotFound
        outcome = await registration_services.registration_place_locked(session, event=event, user_id=user_id)
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
        event = await event_for_actor(session, actor, event_id, lock=True)
        if not permissions.can_change_attendees(actor, association_id=event.association_id):
            raise Forbidden
        registration = (await session.execute(select(Registration).where(
            Registration.id == registration_id, Registration.event_id == event.id))).scalar_one_or_none()
        if registration is None or registration.status in (RegistrationStatus.CANCELLED, RegistrationStatus.EXPIRED):
            raise NotFound
        before = registration.status
        registration.status = RegistrationStatus.CANCELLED
        registration.offer_expires_at = None
        await session.flush()
        await outbox.reminders_drop(session, event_id=event.id, user_id=registration.user_id)
        if before != RegistrationStatus.ENTERED:  # an entry in a draw is told nothing by e-mail, either way
            await outbox.notify(session, kind="registration.removed", recipient_ids=[registration.user_id],
                                event_id=event.id)
        promoted = await promotions.waitlist_promote_locked(session, event)
        await broadcast.seats_changed(session, event_id=event.id)
        await audit_log(session, actor_id=actor.id, action="registration.removed", object_type="registration",
                        object_id=registration.id, association_id=event.association_id,
                        changes={"status": [before.value, "cancelled"], "user_id": [registration.user_id, None],
                                 "promoted_user_ids": [None, list(promoted)]})
    return promoted


class CheckInClosed(DomainError):
    message = _("This event was cancelled: nobody can be checked in.")


class TicketNotValid(DomainError):
    message = _("This is not a ticket of this site: check that the whole code was read.")


class TicketOtherEvent(DomainError):
    message = _("This ticket is for another event.")


class TicketNotConfirmed(DomainError):
    message = _("This ticket's registration is not confirmed (cancelled, or never given a seat): no entry.")


@dataclass(frozen=True, slots=True)
class TicketScan:
    """A check-in, by ticket or by name."""

    display_name: str
    checked_in_at: datetime
    already: bool  # checked in before this scan, at checked_in_at


async def _door(session: AsyncSession, actor: Actor, event_id: int, *, checking_in: bool = True) -> Event:
    """The event whose door the actor keeps; to check someone in, it must go ahead (a cancelled event checks
    nobody in; a wrong click may still be undone)."""
    event = await event_for_actor(session, actor, event_id)
    if not permissions.can_check_in(actor, association_id=event.association_id):
        raise Forbidden
    if checking_in and not visibility.goes_ahead(event.status):
        raise CheckInClosed
    return event


async def _checked_in(session: AsyncSession, *, actor: Actor, event: Event, registration_id: int,
                      by: str) -> TicketScan | None:
    """Check a confirmed registration of ``event`` in, once. Several door staff may check the same person in
    at the same moment (a scan, a click on the name): the first UPDATE sets the time, and every other one,
    waiting for that row (PostgreSQL) or for the writer (SQLite), finds it set and answers "already checked in
    at" that time. The audit entry is written with the check-in. None: no such confirmed registration."""
    now = utcnow()
    marked = (await session.execute(
        update(Registration).where(Registration.id == registration_id, Registration.event_id == event.id,
                                   Registration.status == RegistrationStatus.CONFIRMED, attendance.not_checked_in())
        .values(checked_in_at=now).returning(Registration.user_id))).first()
    holder = (await session.execute(
        select(User.display_name, Registration.status, Registration.checked_in_at)
        .join(Registration, Registration.user_id == User.id)
        .where(Registration.id == registration_id, Registration.event_id == event.id))).first()
    if holder is None or holder.status != RegistrationStatus.CONFIRMED or not holder.checked_in_at:
        return None  # (confirmed and not checked in by the UPDATE: that cannot be)
    if marked is not None:
        await audit_log(session, actor_id=actor.id, action="registration.checked_in", object_type="registration",
                        object_id=registration_id, association_id=event.association_id,
                        changes={"checked_in_at": [None, now], "by": [None, by]})
    return TicketScan(holder.display_name, holder.checked_in_at, already=marked is None)


async def _check_in_undone(session: AsyncSession, *, actor: Actor, event: Event, registration_id: int) -> None:
    """Undo a check-in (a wrong click): one UPDATE of a registration still checked in, so two undos write one
    audit entry."""
    before = (await session.execute(select(Registration.checked_in_at).where(
        Registration.id == registration_id, Registration.event_id == event.id,
        Registration.status == RegistrationStatus.CONFIRMED))).first()
    if before is None:
        raise NotFound
    undone = (await session.execute(
        update(Registration).where(Registration.id == registration_id, attendance.checked_in())
        .values(checked_in_at=None).returning(Registration.id))).first()
    if undone is not None:
        await audit_log(session, actor_id=actor.id, action="registration.check_in_undone",
                        object_type="registration", object_id=registration_id, association_id=event.association_id,
                        changes={"checked_in_at": [before.checked_in_at, None]})


async def attendee_check_in(
    session: AsyncSession, *, actor: Actor, event_id: int, registration_id: int, present: bool = True
) -> TicketScan | None:
    """The door checks a confirmed student in by name (``present``), or undoes it (None). Checked in already:
    nothing is written, and the answer says since when."""
    async with session.begin():
        if not present:
            event = await _door(session, actor, event_id, checking_in=False)
            await _check_in_undone(session, actor=actor, event=event, registration_id=registration_id)
            return None
        event = await _door(session, actor, event_id)
        checked = await _checked_in(session, actor=actor, event=event, registration_id=registration_id, by="name")
        if checked is None:
            raise NotFound
        return checked


async def ticket_check_in(session: AsyncSession, *, actor: Actor, event_id: int, code: str) -> TicketScan:
    """The door scanned (or typed) a ticket: its holder is checked in once (``_checked_in``). Nothing is
    written for a refused ticket, nor at an event that does not go ahead."""
    ticket = tickets.ticket_read(code)
    async with session.begin():
        event = await _door(session, actor, event_id)
        if ticket is None:
            raise TicketNotValid
        if ticket.event_id != event.id:
            raise TicketOtherEvent
        checked = await _checked_in(session, actor=actor, event=event, registration_id=ticket.registration_id,
                                    by="ticket")
        if checked is None:
            raise TicketNotConfirmed
        return checked


async def association_save(
    session: AsyncSession, *, actor: Actor, association_id: int | None, slug: str, name: str, description: str,
    no_show_delay_hours: int | None = None, no_show_penalty_days: int = 30,
) -> int:
    """Create (staff) or edit (staff, or the association's managers) an association."""
    try:
        async with session.begin():
            if association_id is None:
                if not actor.is_staff:
                    raise Forbidden
                association_id = (await session.execute(insert(Association).returning(Association.id), {
                    "slug": slug, "name": name, "description": description, "no_show_delay_hours": no_show_delay_hours,
                    "no_show_penalty_days": no_show_penalty_days, "created_at": utcnow()})).scalar_one()
                await audit_log(session, actor_id=actor.id, action="association.created",
                                object_type="association", object_id=association_id, association_id=association_id,
                                changes={"slug": [None, slug], "name": [None, name]})
                return association_id
            association = await session.get(Association, association_id, with_for_update=True)
            if association is None or not actor.is_manager_of(association_id):
                raise NotFound
            changes = diff({"slug": association.slug, "name": association.name,
                            "description": association.description,
                            "no_show_delay_hours": association.no_show_delay_hours,
                            "no_show_penalty_days": association.no_show_penalty_days},
                           {"slug": slug, "name": name, "description": description,
                            "no_show_delay_hours": no_show_delay_hours, "no_show_penalty_days": no_show_penalty_days})
            association.slug, association.name, association.description = slug, name, description
            association.no_show_delay_hours = no_show_delay_hours
            association.no_show_penalty_days = no_show_penalty_days
            await session.flush()
            await broadcast.seats_changed(session, event_id=0)  # its name shows in the cached public list
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
            User.email == emails.normalize_email(email), User.is_active.is_(True),
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
