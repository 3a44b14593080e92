"""Attendance and no-shows: the one rule for "did not come", and what it costs at the association's next
openings (Lego's penalties, told transparently).

An association may choose to delay the openings of its no-shows (``Association.no_show_delay_hours``): a
student who held a confirmed seat at one of its events where attendance was taken (someone was checked in)
and was not checked in registers that many hours after their usual opening, at every opening of the
association's events that comes before ``no_show_penalty_days`` after that event. An event where nobody was
checked in counts for nobody: the organisers did not take attendance. Leaving in time never counts (the
seat went to someone else); leaving after the last moment to leave is not possible on this site.

The event page (which tells the student why and until when) and the registration service use the same
functions: ``no_show`` in SQL, ``delayed_opening`` in Python; an event's statistics count its present
(``checked_in``) and its no-shows once they are known (``no_shows_known``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, select
from sqlalchemy.orm import aliased

from events.models import Event, Registration, RegistrationStatus


@dataclass(frozen=True, slots=True)
class NoShow:
    """A student's latest no-show at an association's events: which event, and when it ended."""

    event_title: str
    event_ends_at: datetime


def not_checked_in() -> ColumnElement[bool]:
    """SQL: nobody has checked this registration's student in (yet): the door's first scan, and half of a
    no-show."""
    return Registration.checked_in_at.is_(None)


def checked_in() -> ColumnElement[bool]:
    """SQL: this registration's student was checked in at the door (came)."""
    return Registration.checked_in_at.is_not(None)


def no_shows_known() -> ColumnElement[bool]:
    """SQL, on a query of ``Event``: its no-shows are known. The event has ended (before the ``now``
    parameter) and attendance was taken there (someone was checked in)."""
    other = aliased(Registration)
    attendance_taken = select(other.id).where(other.event_id == Event.id, other.checked_in_at.is_not(None)).exists()
    return and_(Event.ends_at < bindparam("now", type_=Event.ends_at.type), attendance_taken)


def no_show() -> ColumnElement[bool]:
    """SQL, on a query joining ``Registration`` to its ``Event``: the registration is a no-show. Its seat was
    confirmed, the event's no-shows are known (``no_shows_known``: it has ended and attendance was taken),
    and this student was not checked in."""
    return and_(Registration.status == RegistrationStatus.CONFIRMED, not_checked_in(), no_shows_known())


def penalty_ends_at(last: NoShow, penalty_days: int) -> datetime:
    return last.event_ends_at + timedelta(days=penalty_days)


def counts_since(opening: datetime, penalty_days: int) -> datetime:
    """The no-shows that still delay an opening at ``opening`` ended after this moment."""
    return opening - timedelta(days=penalty_days)


def delayed_opening(opening: datetime | None, last: NoShow | None, *, delay_hours: int | None,
                    penalty_days: int) -> datetime | None:
    """A student's opening (``opening``: their own, priority groups included) once their no-shows count:
    later by the association's delay when their latest no-show's penalty still runs at that opening. An event
    without an opening time opens at publication for everyone: there is no opening to delay."""
    if opening is None or last is None or delay_hours is None or opening >= penalty_ends_at(last, penalty_days):
        return opening
    return opening + timedelta(hours=delay_hours)


def penalty_window_open(opening: datetime | None, delay_hours: int | None, now: datetime) -> bool:
    """Someone's registration could still be delayed now: the association delays its no-shows and the
    latest delayed opening (the event's own, plus the delay) has not come. Outside it nobody's no-shows
    need reading."""
    return opening is not None and delay_hours is not None and now < opening + timedelta(hours=delay_hours)
