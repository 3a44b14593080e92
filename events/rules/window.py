"""The registration window: the one rule for "may register now" and "may still leave"."""

from __future__ import annotations

from datetime import datetime

from events.models import (
    Event,
    EventStatus,
)


def registration_is_open(event: Event, now: datetime) -> bool:
    """The one rule for "may register now": approved, window open, not started."""
    if event.status != EventStatus.APPROVED:
        return False
    if event.registration_opens_at is not None and now < event.registration_opens_at:
        return False
    closes_at = event.registration_closes_at or event.starts_at
    return now < closes_at


def unregistration_is_open(event: Event, now: datetime) -> bool:
    return now < (event.unregistration_closes_at or event.starts_at)
