"""The event's lock: the statements that read an event under it, for every service that changes its seats.

- ``event_locked``: the event as an ORM entity under the seat writers' lock (leaving, offers, promotions).
- ``event_row_locked``: the same lock on a Core row of the event's columns (a registration batch, a draw),
  by id or, for a student's POST, by the slug of a published event.
- ``event_draw_locked``: a lottery's draw, the strongest lock (FOR UPDATE), taken over the seat writers' one.
- ``UNSAFE_RACE_WINDOW_SECONDS``: the concurrency tests' switch that reads without the lock (below).

The seat writers' lock is FOR NO KEY UPDATE, not FOR UPDATE: it excludes every other seat writer and staff
edit as much (they take the same lock, or an UPDATE's), but not the KEY SHARE lock that inserting a row which
refers to the event takes (the foreign key's check). So an entry in a lottery's draw, a plain INSERT, never
waits for a registration batch or a draw to commit. (SQLite: the write transaction serialises writers anyway.)
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.errors import EventNotFound
from events.models import Association, Event
from events.registration.lines import EventKey
from events.rules import visibility

# Test switch for the control run of the concurrency tests (prove a race test can fail): the event is read
# without its lock, every registration is written alone (as N processes would) and waits this long under what
# should have been the lock. Read from this module at each call (tests set it here). Off in production code
# paths: only tests/registration/test_registration_concurrency.py and tests/plumbing/test_invariants.py turn
# it on.
UNSAFE_RACE_WINDOW_SECONDS: float = 0.0


_EVENT = select(Event).where(Event.id == bindparam("event_id"))
_EVENT_LOCKED = _EVENT.with_for_update(key_share=True)  # built once: every registration and cancellation runs it


async def event_locked(session: AsyncSession, event_id: int) -> Event:
    """The event as an ORM entity, under the seat writers' lock (every service that changes seats)."""
    statement = _EVENT if UNSAFE_RACE_WINDOW_SECONDS else _EVENT_LOCKED
    event = (await session.execute(statement, {"event_id": event_id})).scalar_one_or_none()
    if event is None:
        raise EventNotFound
    return event


# The registration path's lock as a Core statement: the batch reads only the event's columns, and the ORM's
# entity load (identity map, instance state) cost ~0.1 ms per registration for nothing it uses.
# With the organising association's no-show settings (rules/attendance.py), which an opening may depend on.
_ASSOCIATION_NO_SHOWS = tuple(
    select(column).where(Association.id == Event.association_id).correlate(Event).scalar_subquery().label(column.key)
    for column in (Association.no_show_delay_hours, Association.no_show_penalty_days))
_EVENT_ROW = {by: select(*Event.__table__.columns, *_ASSOCIATION_NO_SHOWS).where(column == bindparam("key"))
              for by, column in ((int, Event.id), (str, Event.slug))}
_EVENT_ROW_LOCKED = {by: statement.with_for_update(key_share=True) for by, statement in _EVENT_ROW.items()}


async def event_row_locked(session: AsyncSession, event_key: EventKey) -> Event:
    """The event's row, locked (``event_locked`` without the ORM entity): a Core row whose attributes are
    the event's columns, read-only, which is all a registration batch needs of it. By slug, only a
    published event is found."""
    connection = await session.connection()
    # The control run of the race tests reads without the lock, as event_locked does.
    statement = (_EVENT_ROW if UNSAFE_RACE_WINDOW_SECONDS else _EVENT_ROW_LOCKED)[type(event_key)]
    row = (await connection.execute(statement, {"key": event_key})).one_or_none()
    if row is None or (isinstance(event_key, str) and not visibility.is_published(row.status)):
        raise EventNotFound
    return row  # type: ignore[return-value]  # a Row with the Event's columns as attributes


_EVENT_DRAW_LOCK = select(Event.id).where(Event.id == bindparam("event_id")).with_for_update()


async def event_draw_locked(session: AsyncSession, event_id: int) -> None:
    """The draw's lock on the event (FOR UPDATE), taken by a transaction that already holds the seat writers'
    one: entries (registration/lottery.py) hold FOR KEY SHARE on the event while they are written, which the
    seat writers' lock lets through; FOR UPDATE waits for those in flight (so they are drawn) and makes later
    ones wait for the draw (they are then no entries: nothing is written)."""
    await session.execute(_EVENT_DRAW_LOCK, {"event_id": event_id})
