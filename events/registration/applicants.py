"""Who is asking: what the rules of openings and held seats read of the students of a registration batch (or
of a waitlist), read only when one of those rules can matter now.

- ``openings_and_groups``: when registration opens for each applicant whose opening is not the event's own
  (earlier in a priority group, ``rules.priority``; later after a no-show, ``rules.attendance``), and which
  applicants are in a priority group (the seats an event holds for the groups are theirs, ``rules.seats``).
- ``students``: a priority group's view of some students (promo, address, membership of the organising
  association), in one statement; ``not_admitted``: which of them an event open to some students keeps out
  (``rules.restrictions``).

The registration services call them under the event's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.models import Event, Membership, User, utcnow
from events.registration import queries
from events.registration.lines import Applicant
from events.rules import attendance, priority, restrictions, window


@dataclass(frozen=True, slots=True)
class Student:
    promo: int | None
    email: str
    association_ids: frozenset[int]


_APPLICANTS = (select(User.id, User.promo, User.email, Membership.association_id)
               .outerjoin(Membership, and_(Membership.user_id == User.id,
                                           Membership.association_id == bindparam("association_id")))
               .where(User.id.in_(bindparam("user_ids", expanding=True))))


async def openings_and_groups(session: AsyncSession, event: Event, batch: list[Applicant], *, window_checked: bool,
                             reserve: bool) -> tuple[dict[int, datetime], set[int]]:
    """When registration opens for each applicant of ``batch`` whose opening is not the event's own: earlier
    in a priority group (``rules.priority``), later after a no-show (``rules.attendance``); and which of them
    are in a priority group (the seats held for the groups are theirs, ``reserve``: some are held now).
    Reads only what can matter now: the students before the event's opening or while seats are held, the
    no-shows until the opening plus the delay (one statement each)."""
    now = utcnow()
    grouped = not window_checked and priority.has_priority_openings(event) \
        and window.registration_not_yet_open(event, now)
    delay_hours = getattr(event, "no_show_delay_hours", None)  # (on the Core row the batch locks)
    delaying = not window_checked and attendance.penalty_window_open(event.registration_opens_at, delay_hours, now)
    if not grouped and not delaying and not reserve:
        return {}, set()
    user_ids = [member.user_id for member in batch]
    known = await students(session, event, user_ids) if grouped or reserve else {}
    in_group = {user_id for user_id, student in known.items() if priority.groups_of(event, student)}
    if not grouped and not delaying:
        return {}, in_group
    no_shows = {}
    if delaying:
        penalty_days = event.no_show_penalty_days  # type: ignore[attr-defined]  # the Core row's
        no_shows = await queries.latest_no_shows(
            session, user_ids=user_ids, association_id=event.association_id,
            since=attendance.counts_since(event.registration_opens_at, penalty_days), now=now)  # type: ignore[arg-type]
    openings = {}
    for user_id in user_ids:
        opening = priority.opening_for(event, known.get(user_id))
        if delaying:
            opening = attendance.delayed_opening(opening, no_shows.get(user_id), delay_hours=delay_hours,
                                                 penalty_days=penalty_days)
        if opening is not None:
            openings[user_id] = opening
    return openings, in_group


async def students(session: AsyncSession, event: Event, user_ids: list[int]) -> dict[int, Student]:
    """What the priority groups read of these students, in one statement."""
    rows = await session.execute(_APPLICANTS, {"association_id": event.association_id, "user_ids": user_ids})
    return {row.id: Student(row.promo, row.email,
                             frozenset(() if row.association_id is None else (row.association_id,)))
            for row in rows}


async def not_admitted(session: AsyncSession, event: Event, user_ids: list[int]) -> set[int]:
    """Those of ``user_ids`` that ``event``'s restriction keeps out (``rules.restrictions``), in one statement."""
    known = await students(session, event, user_ids)
    return {user_id for user_id in user_ids if not restrictions.admits(event, known.get(user_id))}
