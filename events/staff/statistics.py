"""An event's statistics for its managers and staff: registrations over time, fill rate, waitlist, seats
offered, lottery entries, departures, and once known the present and the no-shows.

What counts as a registration here: every registration row of the event, on the day its ``created_at``
falls in the site's time zone. A student has one row per event, whatever happened to it since (confirmed,
waiting, offered, entered in a lottery, left, offer expired): the curve counts the people who ever
registered, and the page shows beside it how many are confirmed now. The curve runs from the day of the
first registration to the event's start, or to today if that comes first; a registration made after the
start (added at the door) stretches it to its own day, so the curve ends on the total.

Two statements on the page's read session: the counts (the seat and attendance rules' owners, as correlated
counts of the event's row), then the registrations' timestamps, bucketed by day in Python (PostgreSQL's and
SQLite's date functions differ; an event has at most a few thousand registrations). The seats taken, the
waitlist and the lottery entries come with the event itself (``queries.admin_event``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from events.catalog.presenters import date_format
from events.localtime import local
from events.models import Event, Registration, RegistrationStatus
from events.rules import attendance
from events.rules.seats import SeatState, count_of
from events.staff.queries import AdminEvent
from hyperion import db


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    new: int  # registrations made that day
    total: int  # registrations made up to the end of that day


@dataclass(frozen=True, slots=True)
class Attendance:
    """Known once the event has ended and check-in was used (rules/attendance.py)."""

    present: int  # confirmed and checked in
    no_shows: int  # confirmed, not checked in


@dataclass(frozen=True, slots=True)
class Statistics:
    seats: SeatState  # taken (confirmed and offered), the capacity, the waitlist
    entries: int  # lottery entries waiting for the draw
    registrations: int  # every registration made (the curve's last total)
    confirmed: int
    offered: int  # seats offered from the waitlist, not answered yet
    left: int  # registrations cancelled: the student left, or was removed
    attendance: Attendance | None
    days: list[DayCount]
    # (The answers to the registration questions are counted by rules.questions.answer_counts, in the view.)


async def event_statistics(session: db.Reader, *, found: AdminEvent, now: datetime) -> Statistics:
    """The figures of ``found``'s event as of ``now``."""
    event = found.event
    counts = (await session.execute(
        select(count_of(RegistrationStatus.CONFIRMED).label("confirmed"),
               count_of(RegistrationStatus.OFFERED).label("offered"),
               count_of(RegistrationStatus.CANCELLED).label("left"),
               count_of(RegistrationStatus.CONFIRMED, where=attendance.checked_in()).label("present"),
               count_of(RegistrationStatus.CONFIRMED, where=attendance.no_show()).label("no_shows"),
               attendance.no_shows_known().label("known"))
        .where(Event.id == event.id), {"now": now})).one()
    created = (await session.execute(
        select(Registration.created_at).where(Registration.event_id == event.id)
        .order_by(Registration.created_at))).scalars().all()
    return Statistics(
        seats=found.seats, entries=found.entries, registrations=len(created), confirmed=counts.confirmed,
        offered=counts.offered, left=counts.left,
        attendance=Attendance(counts.present, counts.no_shows) if counts.known else None,
        days=days_of(list(created), until=min(now, event.starts_at)))


def days_of(created: list[datetime], *, until: datetime) -> list[DayCount]:
    """Registrations made each local day, and their running total, from the first registration's day to
    ``until``'s (or to the last registration's, if later). Empty without registrations."""
    if not created:
        return []
    per_day = Counter(local(moment).date() for moment in created)
    first, last = min(per_day), max(local(until).date(), max(per_day))
    days, total = [], 0
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        total += per_day[day]
        days.append(DayCount(day, per_day[day], total))
    return days


# The chart: an inline SVG drawn in a box of WIDTH × HEIGHT user units (it scales to the page's width), the
# plot inside the margins, the axis labels in them.
WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 32, 14, 52  # room for the axes' labels (a day's, centred on it)
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    day: DayCount
    label: str  # the day in words, for the dot's tooltip and the table of numbers


@dataclass(frozen=True, slots=True)
class Tick:
    position: float  # x for the day axis, y for the count axis
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    points: list[Point]  # one a day, in order
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    total: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def line(self) -> str:
        """The polyline's points ("x,y x,y …"); a single day has none to join (its dot alone shows it)."""
        return " ".join(f"{point.x},{point.y}" for point in self.points) if len(self.points) > 1 else ""

    @property
    def area(self) -> str:
        """The area under the line, down to the axis."""
        if len(self.points) < 2:
            return ""
        return f"{self.points[0].x},{self.bottom} {self.line} {self.points[-1].x},{self.bottom}"

    @property
    def dots(self) -> list[Point]:
        """A dot on each day something was added (every day of a short curve)."""
        return [point for point in self.points if point.day.new]


def count_step(largest: int) -> int:
    """The count axis's step: 1, 2 or 5 times a power of ten, giving at most about four intervals."""
    rough = max(largest / 4, 1)
    power = 10 ** math.floor(math.log10(rough))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= rough)


def chart_of(days: list[DayCount]) -> Chart | None:
    """The registrations curve of ``days`` (None without registrations: the page says so in a sentence)."""
    if not days:
        return None
    total = days[-1].total
    step = count_step(total)
    top = step * math.ceil(total / step)
    slot = PLOT_WIDTH / len(days)

    def x(index: int) -> float:
        return round(LEFT + (index + 0.5) * slot, 1)

    def y(count: int) -> float:
        return round(TOP + PLOT_HEIGHT * (1 - count / top), 1)

    points = [Point(x(index), y(day.total), day, date_format(day.day, "j F Y")) for index, day in enumerate(days)]
    ticked = sorted({0, len(days) // 2, len(days) - 1}) if len(days) > 2 else range(len(days))
    return Chart(
        points=points, y_ticks=[Tick(y(count), str(count)) for count in range(0, top + 1, step)],
        x_ticks=[Tick(x(index), date_format(days[index].day, "j N")) for index in ticked], total=total)
