"""The calendar pages' grids: which events fall on which local day. Pure functions, no queries."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.utils.formats import date_format

from events import localtime
from events.catalog import presenters
from events.catalog.queries import EventRow


def parse_month(raw: str | None, *, default: date) -> date:
    """``YYYY-MM`` → the first of that month; anything else → the default's month."""
    try:
        year, month = (int(part) for part in (raw or "").split("-"))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return date(year, month, 1)
    except ValueError:
        pass
    return default.replace(day=1)


def parse_week(raw: str | None, *, default: date) -> date:
    """``YYYY-MM-DD`` (any day of the week) → that week's Monday; anything else → this week's."""
    try:
        day = date.fromisoformat(raw or "")
        if not 2000 <= day.year <= 2100:
            raise ValueError
    except ValueError:
        day = default
    return day - timedelta(days=day.weekday())


def month_grid_bounds(first: date) -> tuple[date, date]:
    """Monday on or before the 1st, and the Monday after the month's last week (exclusive)."""
    start = first - timedelta(days=first.weekday())
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    end = last + timedelta(days=7 - last.weekday())
    return start, end


@dataclass(slots=True)
class CalendarEntry:
    card: presenters.EventCard
    continues: bool  # a multi-day event seen on a day after its first


@dataclass(slots=True)
class CalendarDay:
    day: date
    in_month: bool
    is_today: bool
    label: str
    entries: list[CalendarEntry] = field(default_factory=list)


def _days_of(row: EventRow) -> list[date]:
    """The local days an event covers (an event ending at midnight does not spill into the next day)."""
    first = localtime.local(row.starts_at).date()
    end = localtime.local(row.ends_at)
    last = end.date()
    if last > first and end.time() == end.time().min:
        last -= timedelta(days=1)
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _place(rows: list[EventRow], days: dict[date, CalendarDay]) -> None:
    for row in rows:
        card = presenters.event_card(row)
        for number, day in enumerate(_days_of(row)):
            if day in days:
                days[day].entries.append(CalendarEntry(card=card, continues=number > 0))
    for cell in days.values():
        # All-day and continuing events first, then by start time.
        cell.entries.sort(key=lambda entry: (not (entry.card.row.all_day or entry.continues), entry.card.row.starts_at))


@dataclass(slots=True)
class MonthView:
    first: date
    title: str
    weeks: list[list[CalendarDay]]
    previous: str
    next: str
    weekday_names: list[str]


def _weekday_names() -> list[str]:
    monday = date(2024, 1, 1)
    return [date_format(monday + timedelta(days=offset), "l") for offset in range(7)]


def month_view(first: date, rows: list[EventRow], *, today: date) -> MonthView:
    start, end = month_grid_bounds(first)
    days = {}
    for offset in range((end - start).days):
        day = start + timedelta(days=offset)
        days[day] = CalendarDay(day=day, in_month=day.month == first.month, is_today=day == today,
                                label=date_format(day, "l j F Y"))
    _place(rows, days)
    ordered = list(days.values())
    previous = (first - timedelta(days=1)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return MonthView(
        first=first, title=date_format(first, "F Y"),
        weeks=[ordered[index:index + 7] for index in range(0, len(ordered), 7)],
        previous=f"{previous:%Y-%m}", next=f"{following:%Y-%m}", weekday_names=_weekday_names(),
    )


@dataclass(slots=True)
class WeekView:
    monday: date
    title: str
    days: list[CalendarDay]
    previous: str
    next: str
    month: str


def week_view(monday: date, rows: list[EventRow], *, today: date) -> WeekView:
    days = {}
    for offset in range(7):
        day = monday + timedelta(days=offset)
        days[day] = CalendarDay(day=day, in_month=True, is_today=day == today, label=date_format(day, "l j F"))
    _place(rows, days)
    sunday = monday + timedelta(days=6)
    return WeekView(
        monday=monday, title=f"{date_format(monday, 'j F')} – {date_format(sunday, 'j F Y')}",
        days=list(days.values()), previous=(monday - timedelta(days=7)).isoformat(),
        next=(monday + timedelta(days=7)).isoformat(), month=f"{monday:%Y-%m}",
    )
