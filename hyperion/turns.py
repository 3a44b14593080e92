"""Giving back the request's admission turn while it waits for something that needs no turn.

A turn (hyperion/app.py, ``Admission``) bounds the requests inside Django, sized for the database pool. A
request that waits for slow work of another kind (a password hash in a thread) holds its turn for nothing
while pages queue behind it. ``given_back()`` lends the turn to the next request in line for the duration of
a block, then takes one again, ahead of new arrivals. The app sets the request's turn in a context
variable, so this module is all that views need: hyperion/ never imports events/.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

# The admission turn of the request the current task serves (None outside one: tests calling views through
# Django's test client, management commands).
current_turn: ContextVar[Any] = ContextVar("hyperion_admission_turn", default=None)

# The connection's own ``receive`` of the request the current task serves, once its body has been read (None
# without a body, or outside the app): what tells of the client leaving.
current_connection: ContextVar[Any] = ContextVar("hyperion_request_connection", default=None)


class ClientLeft(Exception):
    """The request's client closed its connection while the request waited aside."""


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


async def wait_aside(waiter: asyncio.Future) -> Any:
    """Wait for ``waiter`` (a future another task will resolve) without the request's admission turn, and
    unless the client leaves first: then ``ClientLeft`` is raised (``waiter`` left as it is), so that the
    request is not carried out behind the back of someone who closed the page (as the app does for a request
    that leaves while it waits for its turn: hyperion/app.py). Only a request with a body is watched: its
    body is read whole before Django, so nothing else reads its connection meanwhile."""
    connection = current_connection.get()
    turn = current_turn.get()
    holds_turn = turn is not None and not turn.done
    if holds_turn:
        turn.release()
    leaving = None if connection is None else asyncio.ensure_future(connection())
    try:
        if leaving is not None:
            await asyncio.wait((waiter, leaving), return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done() and leaving.result().get("type") == "http.disconnect":
                holds_turn = False  # the caller only cleans up: no turn needed for that
                raise ClientLeft
        return await waiter
    finally:
        if leaving is not None and not leaving.done():
            leaving.cancel()  # uvicorn's receive only waits on an event: cancelling it loses no message
        if holds_turn:
            await turn.take_again()
