"""Turning rows into what templates show: local times, labels, groups. Pure functions, no queries.

Dates are formatted here in Python, once per row, rather than through template filters (Django's ``|date``
on 20 rows was most of a millisecond, perf-notes.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import translation
from django.utils.formats import date_format

from events.categories import category_label
from events.queries import EventRow


@cache
def site_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def local(moment: datetime) -> datetime:
    return moment.astimezone(site_zone())


def page_number(raw: str | None) -> int:
    try:
        number = int(raw or 1)
    except ValueError:
        return 1
    return min(max(number, 1), 10_000)


@dataclass(frozen=True, slots=True)
class DayGroup:
    day: date
    label: str
    events: list[EventCard]


@dataclass(frozen=True, slots=True)
class EventCard:
    row: EventRow
    time_label: str
    category_label: str
    seats_label: str
    is_full: bool
    is_cancelled: bool


def time_range_label(starts_at: datetime, ends_at: datetime, all_day: bool) -> str:
    start, end = local(starts_at), local(ends_at)
    if all_day:
        if start.date() == end.date():
            return translation.gettext("All day")
        return translation.gettext("Until %(day)s") % {"day": date_format(end.date(), "j F")}
    if start.date() == end.date():
        return f"{start:%H:%M} – {end:%H:%M}"
    return f"{start:%H:%M} – {date_format(end.date(), 'j F')} {end:%H:%M}"


def seats_label(row: EventRow) -> str:
    seats = row.seats
    if seats.unlimited:
        return translation.gettext("Open to all")
    if seats.is_full:
        return translation.gettext("Full, waitlist open")
    return translation.ngettext("%(n)d seat left", "%(n)d seats left", seats.seats_left) % {"n": seats.seats_left}


def event_card(row: EventRow) -> EventCard:
    return EventCard(
        row=row,
        time_label=time_range_label(row.starts_at, row.ends_at, row.all_day),
        category_label=category_label(row.category),
        seats_label=seats_label(row),
        is_full=row.seats.is_full,
        is_cancelled=row.status == "cancelled",
    )


def group_by_day(rows: list[EventRow]) -> list[DayGroup]:
    groups: list[DayGroup] = []
    for row in rows:
        day = local(row.starts_at).date()
        if not groups or groups[-1].day != day:
            groups.append(DayGroup(day=day, label=date_format(day, "l j F Y"), events=[]))
        groups[-1].events.append(event_card(row))
    return groups
