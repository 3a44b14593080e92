"""What follows when a published event changes: the one owner of "its date, time or place changed" and "it was
cancelled", called by every writer that can do either (the management area's edit and cancel, importics), so
that registrants hear the same thing and their reminders move the same way whoever made the change.

Each function runs inside the writer's transaction, after the writer set the new values on ``event`` (a
locked row), and before its commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.models import Event, RegistrationStatus, utcnow
from events.rules import visibility

# A change to one of these is what registered students and their calendars must hear about.
SCHEDULE_FIELDS = ("starts_at", "ends_at", "all_day", "location")
_REGISTRANTS = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED, RegistrationStatus.WAITLISTED,
                RegistrationStatus.ENTERED)


async def event_schedule_changed(session: AsyncSession, *, event: Event, changed_fields: Iterable[str]) -> bool:
    """If ``event`` goes ahead (approved: published and not cancelled) and one of ``changed_fields`` is its
    date, time or place: a new calendar SEQUENCE, the "changed on" banner for its registrants, a message to
    each of them, and their reminders moved to the new date. Returns whether it was such a change."""
    changed = sorted(set(changed_fields) & set(SCHEDULE_FIELDS))
    if not visibility.goes_ahead(event.status) or not changed:
        return False
    event.sequence += 1
    event.changed_at = utcnow()
    await session.flush()
    await outbox.notify_registrants(session, kind="event.changed", event_id=event.id, statuses=_REGISTRANTS,
                                           payload={"changed": changed})
    await outbox.reminders_reschedule(session, event=event)
    return True


# What calendars show of an event besides its schedule: a change gives it a new SEQUENCE (subscribed calendars
# and invitations take the new text) and tells nobody by e-mail.
CALENDAR_TEXT_FIELDS = ("title", "description", "category")


async def event_changed(session: AsyncSession, *, event: Event, changed_fields: Iterable[str]) -> bool:
    """Every writer's one call after changing ``event``'s fields (the management area's edit, importics): a
    new date, time or place goes through ``event_schedule_changed``; otherwise a new title, description or
    category gets a new calendar SEQUENCE, and a new capacity of an event that goes ahead shows its
    registrants that the seats changed. Returns whether the schedule changed."""
    changed = set(changed_fields)
    if await event_schedule_changed(session, event=event, changed_fields=changed):
        return True
    if changed & set(CALENDAR_TEXT_FIELDS):
        event.sequence += 1
    if "capacity" in changed and visibility.goes_ahead(event.status):
        event.changed_at = utcnow()
    await session.flush()
    return False


async def event_cancelled(session: AsyncSession, *, event: Event) -> None:
    """``event`` was just cancelled: a new calendar SEQUENCE (calendars drop it), a message to each registrant,
    and no reminder any more."""
    event.sequence += 1
    await session.flush()
    await outbox.notify_registrants(session, kind="event.cancelled", event_id=event.id, statuses=_REGISTRANTS)
    await outbox.reminders_drop(session, event_id=event.id)
