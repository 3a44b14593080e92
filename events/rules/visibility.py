"""Which events the public sees and which go ahead: the one owner of "published" and "goes ahead".

Published: approved or cancelled. Both show on the public pages, the feeds and My events (a cancelled event
stays visible so that its registrants read why). Listed: published and shown to all, i.e. not a members'
event hidden from everyone else (events/rules/restrictions.py); only listed events are on the lists and
feeds, but for such an event's members, whose lists, calendar and feeds show it (``listed_for``). Drafts,
submitted and declined events are seen by their association's editors and by staff only (rules/permissions.py).

Goes ahead: approved and not cancelled. Only such an event takes registrations, promotes from its waitlist,
sends reminders, counts as an overlap, announces a new date, offers seats in the "has seats" filter, and
holds back the purge of its registrants' accounts until it is over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import QueryableAttribute

from events.models import Event, EventStatus
from hyperion import db

PUBLISHED_STATUSES = (EventStatus.APPROVED, EventStatus.CANCELLED)


def is_published(status: EventStatus) -> bool:
    return status in PUBLISHED_STATUSES


def published(status_column: QueryableAttribute[EventStatus] = Event.status) -> ColumnElement[bool]:
    """SQL: the event is published (shown to everyone)."""
    return db.constant_in(status_column, PUBLISHED_STATUSES)


def shown_to_all(hidden_column: QueryableAttribute[bool] = Event.hidden_from_others) -> ColumnElement[bool]:
    """SQL: not a members' event its organisers hide from everyone else (events/rules/restrictions.py)."""
    return hidden_column.is_(False)


def listed(status_column: QueryableAttribute[EventStatus] = Event.status) -> ColumnElement[bool]:
    """SQL: on the public lists, calendars and feeds: published, and shown to all."""
    return published(status_column) & shown_to_all()


def is_cancelled(status: EventStatus | str | None) -> bool:
    """Cancelled: still shown (with its reason), never going ahead."""
    return status == EventStatus.CANCELLED


def shown_to(member_of: Any) -> ColumnElement[bool]:
    """SQL: shown to a student who is a member of ``member_of`` (association ids: a collection, a bound
    parameter or a subquery): shown to all, or a members' event of one of those associations."""
    return shown_to_all() | Event.association_id.in_(member_of)


def listed_for(member_of: Any) -> ColumnElement[bool]:
    """SQL: on the lists, calendars and feeds of a member of ``member_of``: published, and shown to them."""
    return published() & shown_to(member_of)


def goes_ahead(status: EventStatus | None) -> bool:
    return status == EventStatus.APPROVED


def going_ahead(status_column: QueryableAttribute[EventStatus] = Event.status) -> ColumnElement[bool]:
    """SQL: the event is published and not cancelled."""
    return status_column == EventStatus.APPROVED


def still_to_come(now: datetime) -> ColumnElement[bool]:
    """SQL: an event that goes ahead and is not over yet (the purge and the waitlist command look at these)."""
    return going_ahead() & (Event.ends_at > now)
