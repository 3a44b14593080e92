"""Giving back the request's admission turn while it waits for something that needs no turn.

A turn (hyperion/app.py, ``Admission``) bounds the requests inside Django, sized for the database pool. A
request that waits for slow work of another kind (a password hash in a thread) holds its turn for nothing
while pages queue behind it. ``given_back()`` lends the turn to the next request in line for the duration of
a block, then takes one again, ahead of new arrivals. The app sets the request's turn in a context
variable, so this module is all that views need: hyperion/ never imports events/.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

# The admission turn of the request the current task serves (None outside one: tests calling views through
# Django's test client, management commands).
current_turn: ContextVar[Any] = ContextVar("hyperion_admission_turn", default=None)


@asynccontextmanager
async def given_back():
    """Run the block without the request's admission turn; hold one again afterwards."""
    turn = current_turn.get()
    if turn is None or turn.done:
        yield
        return
    turn.release()
    try:
        yield
    finally:
        await turn.take_again()
