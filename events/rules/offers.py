"""Waitlist offers: the one rule for "is this promotion an offer, and until when".

An event's editor may make its promotions offers (``Event.offer_hours``): the first in line is offered the seat,
which is held for them until the offer expires, and passes to the next in line if they do not accept it in
time. Close to the event an offer is shorter, so that a refused or forgotten seat can still reach someone:
at most half the time left before the start. When even that is under ``SHORTEST_OFFER`` there is no time to
pass a seat on, and the promotion confirms at once, as for an event without offers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

SHORTEST_OFFER = timedelta(minutes=30)


class Offering(Protocol):
    """What the rule reads of an event (read-only, so that frozen rows qualify)."""

    @property
    def offer_hours(self) -> int | None: ...

    @property
    def starts_at(self) -> datetime: ...


def offer_expires_at(event: Offering, now: datetime) -> datetime | None:
    """When an offer made ``now`` expires; None: a promotion now confirms at once (the event makes no offers,
    or it starts too soon for one)."""
    if event.offer_hours is None:
        return None
    lasts = min(timedelta(hours=event.offer_hours), (event.starts_at - now) / 2)
    if lasts < SHORTEST_OFFER:
        return None
    return now + lasts


def offer_is_open(expires_at: datetime | None, now: datetime) -> bool:
    """An offer may still be accepted (its deadline has not passed)."""
    return expires_at is not None and now < expires_at
