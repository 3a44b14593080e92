"""The registration window: the one rule for "may register now", "may still leave", and, for an event that
opens by lottery, "asks now are entries in the draw" and "the draw is due".

The functions take anything with an event's status and dates: the locked ``Event`` row a service holds,
or the ``EventDetail`` the event page shows, so the page's button and the service never disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from events.models import EventStatus
from events.rules import visibility


class Window(Protocol):
    """What the rule reads of an event (read-only, so that frozen rows qualify)."""

    @property
    def status(self) -> EventStatus: ...

    @property
    def starts_at(self) -> datetime: ...

    @property
    def registration_opens_at(self) -> datetime | None: ...

    @property
    def registration_closes_at(self) -> datetime | None: ...

    @property
    def unregistration_closes_at(self) -> datetime | None: ...

    @property
    def lottery_minutes(self) -> int | None: ...

    @property
    def lottery_drawn_at(self) -> datetime | None: ...


def registration_closes_at(event: Window) -> datetime:
    """When registration closes: the date set, or else the start."""
    return event.registration_closes_at or event.starts_at


def registration_not_yet_open(event: Window, now: datetime, opens_at: datetime | None = None) -> bool:
    """``opens_at``: the opening of the student asking when a priority group opens earlier for them
    (``events.rules.priority.opening_for``); None: the event's own."""
    opening = opens_at or event.registration_opens_at
    return opening is not None and now < opening


def registration_is_open(event: Window, now: datetime, opens_at: datetime | None = None) -> bool:
    """The one rule for "may register now": the event goes ahead, the window has opened (for the student
    asking: ``opens_at``, see ``registration_not_yet_open``) and not closed."""
    return (visibility.goes_ahead(event.status) and not registration_not_yet_open(event, now, opens_at)
            and now < registration_closes_at(event))


def unregistration_is_open(event: Window, now: datetime) -> bool:
    """May still leave: before the date set for it, or else before the start."""
    return now < (event.unregistration_closes_at or event.starts_at)


def lottery_closes_at(event: Window) -> datetime | None:
    """When the lottery window closes (the draw is due then); None for an event that opens first come. A
    lottery needs an opening time: without one the event is first come (the form refuses the pair)."""
    if event.lottery_minutes is None or event.registration_opens_at is None:
        return None
    return event.registration_opens_at + timedelta(minutes=event.lottery_minutes)


def in_lottery_window(event: Window, now: datetime) -> bool:
    """An ask now is an entry in the draw: registration is open and the lottery window has not closed (and
    the draw has not run: staff may run it early)."""
    closes = lottery_closes_at(event)
    return (closes is not None and now < closes and event.lottery_drawn_at is None
            and registration_is_open(event, now))


def lottery_draw_due(event: Window, now: datetime) -> bool:
    """The window has closed and the seats have not been drawn yet: whoever next holds the event's lock
    (the site's drawer, an operator, a later ask) draws first."""
    closes = lottery_closes_at(event)
    return closes is not None and now >= closes and event.lottery_drawn_at is None
