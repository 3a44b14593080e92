"""Openings by lottery: entries during the window, and the draw when it closes.

An event that opens by lottery (``Event.lottery_minutes``) takes, for its first minutes of registration, an
entry from every eligible student who asks; the order of the asks does not matter. An entry is one INSERT
that takes no lock on the event (``lottery_enter``), so a rush of entries is answered at once. When the
window closes the seats are drawn among the entries (``services.lottery_draw``: under the event's lock, once,
seed recorded): by the site's drawer (``Drawer``, a lifespan hook of each web process), by ``manage.py
drawlotteries``, or by the first ask after the window, whichever comes first.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from sqlalchemy import ARRAY, Integer, Row, bindparam, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from events import errors
from events.live import broadcast
from events.models import Association, Event, Registration, RegistrationStatus, utcnow
from events.registration import lines, services
from events.rules import visibility, window
from hyperion import db, hooks

logger = logging.getLogger("hyperion.lottery")


def _enter(dialect: str):
    """Entries for a batch of students, guarded by the window the process knows (same opening and length, not
    drawn, going ahead): an event changed meanwhile writes nothing, and the locked path decides. A student who
    already has a registration for the event (an entry, or one they left) gets nothing written either. One
    statement text whatever the batch's size (an array of user ids; JSON on SQLite)."""
    dialect_insert: Any
    if dialect == "postgresql":
        given = func.unnest(bindparam("user_ids", type_=ARRAY(Integer))).table_valued("user_id").render_derived()
        user_id, dialect_insert = given.c.user_id, postgresql.insert
    else:
        given = func.json_each(bindparam("user_ids_json")).table_valued("value")
        user_id, dialect_insert = given.c.value, sqlite.insert
    now = bindparam("now", type_=Registration.queued_at.type)
    guarded = select(Event.id, user_id, literal(RegistrationStatus.ENTERED, Registration.status.type),
                     now, now, now).select_from(Event).join(given, true()).where(
        Event.id == bindparam("event_id"), visibility.going_ahead(),
        Event.lottery_minutes == bindparam("minutes"), Event.lottery_drawn_at.is_(None),
        Event.registration_opens_at == bindparam("opens_at", type_=Event.registration_opens_at.type)
    ).with_for_update(read=True, key_share=True, of=Event)
    # FOR KEY SHARE (PostgreSQL; SQLite serialises writers anyway): it never waits for the seat writers'
    # FOR NO KEY UPDATE, only for a draw (FOR UPDATE, services._draw_locked). An entry that comes while the
    # draw runs waits for it, and its guard is then checked again against the drawn event: nothing is
    # written, and the locked path places the student after the draw. An entry in flight when the draw
    # starts makes the draw wait for it, so the draw counts it. No entry is ever left behind a draw.
    return (dialect_insert(Registration)
            .from_select(["event_id", "user_id", "status", "queued_at", "created_at", "updated_at"], guarded)
            .on_conflict_do_nothing(index_elements=[Registration.event_id, Registration.user_id])
            .returning(Registration.id, Registration.user_id))


_ENTER = {dialect: _enter(dialect) for dialect in ("postgresql", "sqlite")}

# The window each event's last entry saw, for the batch that writes it: (opening, minutes).
_window_seen: dict[int, tuple[datetime | None, int | None]] = {}


async def lottery_enter(
    session: AsyncSession, *, event: window.Window, event_id: int, user_id: int, now: datetime | None = None
) -> services.RegistrationOutcome | None:
    """An entry in the draw of ``event`` (as this process knows it, in its lottery window at ``now``), without
    the event's lock: entries that arrive together are written together (one INSERT, one notification, one
    commit for the batch: the registrations' group commit, lines.Line). None when nothing was written
    (the student already has a registration for the event, or the event changed since): the caller then
    takes the locked path (``services.registration_create``), which answers every case."""
    now = now or utcnow()
    if not window.in_lottery_window(event, now):
        return None
    _window_seen[event_id] = (event.registration_opens_at, event.lottery_minutes)
    return await lines.Line.of(event_id, _enter_batch).register(session, lines.Applicant(user_id, now))


async def _enter_batch(session: AsyncSession, event_id, batch: list[lines.Applicant]) -> None:
    opens_at, minutes = _window_seen[event_id]
    user_ids = [member.user_id for member in batch]
    try:
        async with session.begin():
            connection = await session.connection()  # Core: the ORM's bulk INSERT path adds nothing used here
            rows = (await connection.execute(_ENTER[connection.dialect.name], {
                "event_id": event_id, "user_ids": user_ids, "user_ids_json": json.dumps(user_ids),
                "now": batch[0].now, "minutes": minutes, "opens_at": opens_at})).all()
            new_ids = {row.user_id: row.id for row in rows}
            if new_ids:
                await broadcast.students_changed(session, event_id=event_id, user_ids=tuple(new_ids))
    except BaseException as error:
        lines.fail_all(batch, error)
        raise
    for member in batch:
        if not member.answer.done():
            new_id = new_ids.pop(member.user_id, None)  # a double click in the batch: the second gets None
            member.answer.set_result(None if new_id is None else services.RegistrationOutcome(
                status=RegistrationStatus.ENTERED, registration_id=new_id))


_UNDRAWN = (select(*Event.__table__.columns, select(Association.no_show_delay_hours)
                  .where(Association.id == Event.association_id).scalar_subquery().label("no_show_delay_hours"))
            .where(Event.lottery_minutes.is_not(None), Event.lottery_drawn_at.is_(None),
                   Event.registration_opens_at.is_not(None), visibility.going_ahead()))


# The lottery events waiting for their draw, by slug, as this process's drawer last read them (at most
# LOTTERY_DRAWER_INTERVAL seconds ago): a student's ask finds its event's window here without a read, so
# that an entry is one INSERT even when the event's page was not served by this process. Stale at worst by
# the interval: the INSERT's guard then writes nothing and the locked path answers.
_undrawn: dict[str, Row] = {}


def undrawn(slug: str) -> Row | None:
    """The lottery event ``slug`` waiting for its draw, as last read (None: not one, or not known here)."""
    return _undrawn.get(slug)


@dataclass(frozen=True, slots=True)
class Drawn:
    slug: str
    outcome: services.DrawOutcome


async def draw_due(*, now: datetime | None = None) -> tuple[list[Drawn], datetime | None]:
    """Draw every lottery whose window has closed (each in its own transaction; one already drawn elsewhere
    meanwhile is skipped), and say when the next window closes (None: no lottery waits)."""
    now = now or utcnow()
    async with db.read_connection() as connection:
        waiting = (await connection.execute(_UNDRAWN)).all()
    _undrawn.clear()
    _undrawn.update((row.slug, row) for row in waiting if not window.lottery_draw_due(row, now))
    drawn: list[Drawn] = []
    upcoming = [closes for row in waiting if (closes := window.lottery_closes_at(row)) is not None and closes > now]
    for row in waiting:
        if not window.lottery_draw_due(row, now):
            continue
        async with db.write_session() as session:
            try:
                outcome = await services.lottery_draw(session, event_id=row.id)
            except errors.EventNotFound:  # deleted meanwhile
                continue
        if outcome is not None:
            drawn.append(Drawn(row.slug, outcome))
    return drawn, min(upcoming, default=None)


class Drawer(hooks.DueTask):
    """The site's drawer, a background task of each web process (a lifespan hook, settings.LIFESPAN_HOOKS,
    on unless ``LOTTERY_DRAWER_IN_WEB`` is off): it sleeps until the next lottery window closes (at most
    ``LOTTERY_DRAWER_INTERVAL`` seconds, so that a lottery set up meanwhile is seen), then draws. Several
    processes may draw the same event at the same moment: the event's lock and its recorded draw let one
    of them draw and make the others no-ops."""

    name = "lottery-drawer"

    def enabled(self) -> bool:
        return settings.LOTTERY_DRAWER_IN_WEB

    def interval(self) -> float:
        return settings.LOTTERY_DRAWER_INTERVAL

    async def do_due(self) -> datetime | None:
        drawn, next_closes = await draw_due()
        for done in drawn:
            logger.info("lottery of %s drawn: %s", done.slug, done.outcome)
        return next_closes


drawer = Drawer()
