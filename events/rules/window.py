"""The registration window: the one rule for "may register now" and "may still leave".

The functions take anything with an event's status and dates: the locked ``Event`` row a service holds,
or the ``EventDetail`` the event page shows, so the page's button and the service never disagree.
"""

from __future__ import annotations

from datetime import datetime
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


def registration_closes_at(event: Window) -> datetime:
    """When registration closes: the date set, or else the start."""
    return event.registration_closes_at or event.starts_at


def registration_not_yet_open(event: Window, now: datetime) -> bool:
    return event.registration_opens_at is not None and now < event.registration_opens_at


def registration_is_open(event: Window, now: datetime) -> bool:
    """The one rule for "may register now": the event goes ahead, the window has opened and not closed."""
    return (visibility.goes_ahead(event.status) and not registration_not_yet_open(event, now)
            and now < registration_closes_at(event))


def unregistration_is_open(event: Window, now: datetime) -> bool:
    """May still leave: before the date set for it, or else before the start."""
    return now < (event.unregistration_closes_at or event.starts_at)
