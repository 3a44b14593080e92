"""What follows when an event is published (its followers hear of it) or changes: the one owner of "it was
published", "its date, time or place changed" and "it was cancelled", called by every writer that can do
either (the management area's approval, edit and cancel, importics), so that followers and registrants hear the
same thing and reminders move the same way whoever made the change.

Each function runs inside the writer's transaction, after the writer set the new values on ``event`` (a
locked row), and before its commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta

from django.conf import settings
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.localtime import site_zone
from events.models import Event, Follow, Membership, OutboxMessage, RegistrationStatus, User, utcnow
from events.rules import visibility
from events.rules.accounts import verified
from hyperion import db

# A change to one of these is what registered students and their calendars must hear about.
SCHEDULE_FIELDS = ("starts_at", "ends_at", "all_day", "location")
# The students registered now: in, offered a seat, waiting, or entered in a draw.
REGISTRANTS = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED, RegistrationStatus.WAITLISTED,
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
    await outbox.notify_registrants(session, kind="event.changed", event_id=event.id, statuses=REGISTRANTS,
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
    await outbox.notify_registrants(session, kind="event.cancelled", event_id=event.id, statuses=REGISTRANTS)
    await outbox.reminders_drop(session, event_id=event.id)


def follow_digest_time(now: datetime) -> datetime:
    """When the weekly digest of the followed associations' new events goes: the next Monday (after ``now``)
    at settings.DIGEST_HOUR, Paris time."""
    local_now = now.astimezone(site_zone())
    day = local_now.date() + timedelta(days=(7 - local_now.weekday()) % 7)
    moment = datetime.combine(day, time(settings.DIGEST_HOUR), tzinfo=site_zone())
    return moment if moment > now else moment + timedelta(days=7)


async def event_published(session: AsyncSession, *, event: Event) -> None:
    """``event`` was just published (approved, or imported as such): when is recorded, and the followers of its
    association who want each new event at once get a message about it; those who chose the weekly digest get
    next Monday's (one per week, whatever the number of events: it lists them when it goes). A members' event
    hidden from others is told to members only."""
    now = event.published_at = utcnow()
    followers = (select(Follow.user_id, User.follow_emails).join(User, User.id == Follow.user_id)
                 .where(Follow.association_id == event.association_id, User.is_active.is_(True),
                        User.anonymised_at.is_(None), verified()))
    if event.hidden_from_others:
        followers = followers.join(Membership, (Membership.user_id == Follow.user_id)
                                   & (Membership.association_id == event.association_id))
    rows = (await session.execute(followers)).all()
    await outbox.notify(session, kind="association.new_event", event_id=event.id,
                        recipient_ids=[row.user_id for row in rows if row.follow_emails != "weekly"])
    weekly = [row.user_id for row in rows if row.follow_emails == "weekly"]
    if weekly:
        when = follow_digest_time(now)
        await session.execute(db.insert_for(session)(OutboxMessage).on_conflict_do_nothing(
            index_elements=[OutboxMessage.dedupe_key]), [
            {**outbox.message_row("digest.followed", user_id, None, {"since": (when - timedelta(days=7)).isoformat()},
                                  send_after=when), "dedupe_key": f"followed:{user_id}:{when.date().isoformat()}"}
            for user_id in weekly])
