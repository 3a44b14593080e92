"""Writes of the management area about events: create, series, edit, lifecycle transitions, delete.
(People, attendees and roles: ``events.staff.people``.)

Same habits as ``events.registration.services``: each function owns its transaction, checks permissions and
rules inside it, writes its audit entry in the same transaction, and raises a ``DomainError`` when a rule
says no. Seat changes (capacity, manual add or remove, cancel) lock the event row first, like registrations
do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.audit import audit_log, diff
from events.errors import DomainError, EventNotFound, Forbidden
from events.live import broadcast
from events.localtime import site_zone
from events.models import (
    Event,
    EventStatus,
    utcnow,
)
from events.notifications import changes as event_changes
from events.registration import promotions
from events.registration import services as registration_services
from events.rules import permissions, restrictions, seats
from events.rules import questions as question_rules
from events.rules.lifecycle import AUDIT_ACTIONS, EVENT_FIELDS, PUBLISHED_EDITABLE, can_transition, target_of
from events.rules.permissions import Actor
from events.staff import series


class IllegalTransition(DomainError):
    message = _("This event cannot go to that state from its current one.")


class CapacityBelowConfirmed(DomainError):
    pass




def _event_values(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in EVENT_FIELDS}


def _local_day(moment: datetime) -> date:
    """The day students see (Paris time): an event at 00:30 belongs to its own day, not to UTC's."""
    return moment.astimezone(site_zone()).date()


async def unique_slug(session: AsyncSession, title: str, day: date) -> str:
    base = (slugify(f"{title} {day:%Y-%m-%d}") or f"event-{day:%Y-%m-%d}")[:110]
    taken = set((await session.execute(select(Event.slug).where(Event.slug.like(f"{base}%")))).scalars())
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


async def event_for_actor(session: AsyncSession, actor: Actor, event_id: int, *, lock: bool = False) -> Event:
    """The event if the actor may manage it; otherwise it does not exist for them (404)."""
    statement = select(Event).where(Event.id == event_id)
    if lock:  # the seat writers' lock (registration/locks.py: FOR NO KEY UPDATE)
        statement = statement.with_for_update(key_share=True)
    event = (await session.execute(statement)).scalar_one_or_none()
    if event is None or not permissions.can_see_event_admin(actor, association_id=event.association_id):
        raise EventNotFound
    return event


async def event_create(session: AsyncSession, *, actor: Actor, values: dict[str, Any],
                       copy_of: int | None = None) -> Event:
    """A new draft of one of the actor's associations; a copy of event ``copy_of`` (its fields came through the
    form) also asks its registration questions, under new ids. An event the actor may not manage: 404."""
    async with session.begin():
        if not actor.is_editor_of(values["association_id"]):
            raise Forbidden
        source = await event_for_actor(session, actor, copy_of) if copy_of is not None else None
        asked = question_rules.copied(question_rules.questions_of(source)) if source is not None else ()
        now = utcnow()
        event = Event(**values, slug=await unique_slug(session, values["title"], _local_day(values["starts_at"])),
                      questions=[question.as_stored() for question in asked],
                      status=EventStatus.DRAFT, created_by_id=actor.id, created_at=now, updated_at=now)
        session.add(event)
        await session.flush()
        copy = {"copy_of": [None, copy_of], "questions": [None, event.questions]} if source is not None else {}
        await audit_log(session, actor_id=actor.id, action="event.created", object_type="event",
                        object_id=event.id, association_id=event.association_id,
                        changes={**diff({}, _event_values(event)), **copy})
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
            event = Event(**shifted, slug=await unique_slug(session, values["title"],
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
    # Who may register changed: how many students already registered the new rule would not admit (they keep
    # their place; rules/lifecycle.py says why).
    registered_outside: int = 0


async def _registered_outside(session: AsyncSession, event: Event) -> int:
    """How many of the students registered now ``event``'s restriction would not admit."""
    return len(await registration_services.registrants_not_admitted(session, event))


async def event_update(session: AsyncSession, *, actor: Actor, event_id: int, values: dict[str, Any]) -> EventUpdate:
    """Edit an event. Drafts and declined events: every field (editors). Published: its text, date, place,
    capacity and who may register (managers, staff: lifecycle.PUBLISHED_EDITABLE); capacity never below the
    confirmed count, and raising it promotes from the waitlist."""
    async with session.begin():
        event = await event_for_actor(session, actor, event_id, lock=True)
        if permissions.can_edit_all_fields(actor, association_id=event.association_id, status=event.status):
            allowed: tuple[str, ...] = EVENT_FIELDS
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
        taken = await seats.taken_count(session, event_id=event.id)
        if seats.SeatState(new_values.get("capacity", event.capacity), taken).overbooked:
            raise CapacityBelowConfirmed(
                _("%(count)d seats are taken (confirmed, or offered and not answered yet): the capacity cannot "
                  "go below %(count)d. Remove attendees first if you must.") % {"count": taken})
        capacity, held = new_values.get("capacity", event.capacity), new_values.get("reserved_seats",
                                                                                    event.reserved_seats)
        if not seats.hold_fits(held, capacity):
            raise CapacityBelowConfirmed(
                _("%(count)d seats are held for the priority groups: the capacity cannot go below %(count)d.")
                % {"count": held})
        for name, value in new_values.items():
            setattr(event, name, value)
        if event.hidden_from_others and not restrictions.may_be_hidden(event):  # opened wider: shown to all
            event.hidden_from_others = False
            changes["hidden_from_others"] = [True, False]
        outside = await _registered_outside(session, event) if changes.keys() & set(restrictions.FIELDS) else 0
        event.updated_at = utcnow()
        schedule_changed = await event_changes.event_changed(session, event=event, changed_fields=changes)
        promoted = await promotions.waitlist_promote_locked(session, event)
        await broadcast.seats_changed(session, event_id=event.id)
        await audit_log(session, actor_id=actor.id, action="event.updated", object_type="event",
                        object_id=event.id, association_id=event.association_id, changes=changes)
    return EventUpdate(changed=changes, promoted_user_ids=promoted, schedule_changed=schedule_changed,
                       registered_outside=outside)


async def event_transition(
    session: AsyncSession, *, actor: Actor, event_id: int, action: str, reason: str = ""
) -> Event:
    """submit (editors), approve / decline (staff, decline with a reason), cancel (managers, with a reason)."""
    target = target_of(action)
    async with session.begin():
        event = await event_for_actor(session, actor, event_id, lock=True)
        allowed = {
            "submit": permissions.can_submit(actor, association_id=event.association_id),
            "approve": permissions.can_review(actor),
            "decline": permissions.can_review(actor),
            "cancel": permissions.can_cancel(actor, association_id=event.association_id),
        }[action]
        if not allowed:
            raise Forbidden
        if not can_transition(event.status, action):
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
            await event_changes.event_published(session, event=event)
        await session.flush()
        await broadcast.seats_changed(session, event_id=event.id)  # the public list and counters change
        if action == "cancel":
            await event_changes.event_cancelled(session, event=event)
        elif action in ("approve", "decline"):
            recipients = set(await outbox.association_editors(session, association_id=event.association_id))
            if event.created_by_id:
                recipients.add(event.created_by_id)
            recipients.discard(actor.id)
            await outbox.notify(session, kind=f"event.{'approved' if action == 'approve' else 'declined'}",
                                       recipient_ids=sorted(recipients), event_id=event.id)
        await audit_log(session, actor_id=actor.id, action=AUDIT_ACTIONS[action], object_type="event",
                        object_id=event.id, association_id=event.association_id,
                        changes={"status": [before.value, target.value],
                                 **({"reason": [None, reason.strip()]} if reason.strip() else {})})
    return event


async def event_delete(session: AsyncSession, *, actor: Actor, event_id: int) -> None:
    async with session.begin():
        event = await event_for_actor(session, actor, event_id, lock=True)
        if not permissions.can_delete(actor, association_id=event.association_id, status=event.status):
            raise Forbidden
        await audit_log(session, actor_id=actor.id, action="event.deleted", object_type="event",
                        object_id=event.id, association_id=event.association_id,
                        changes={"title": [event.title, None], "status": [event.status.value, None]})
        await session.execute(delete(Event).where(Event.id == event.id))
