"""Writes of the registration feature: register, the waitlist's promotions and a lottery's draw (leaving is
leaving.py, the event's lock locks.py).

A service owns its transaction: it begins, takes its lock, checks the rule, writes and commits, so the lock
covers the commit and a view, a command and a test get the same unit of work. Callers get a typed result
or a ``DomainError``; database constraint violations become the same domain errors.

Seats: every path that changes seats (register, leave, promotion, and later staff changes) first locks the
event row (``locks.py``: ``SELECT … FOR NO KEY UPDATE`` on PostgreSQL; on SQLite the write transaction's
``BEGIN IMMEDIATE`` already serialises writers) and counts the confirmed rows under that lock. No stored
counter can drift.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.utils.translation import gettext_lazy as _
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.audit import audit_log
from events.errors import DomainError
from events.live import broadcast
from events.models import Event, Registration, RegistrationStatus, utcnow
from events.registration import applicants, batch_statements, locks, promotions
from events.registration import questions as registration_questions
from events.registration.lines import (  # noqa: F401 - RegistrationAbandoned: the callers' error, here with the others
    BATCH_MAX,
    Applicant,
    EventKey,
    Line,
    RegistrationAbandoned,
    fail_all,
    outcome_or_raise,
)
from events.rules import lottery, restrictions, visibility, window
from events.rules.seats import LIVE_STATUSES, RESERVED, SeatState, held_seats
from hyperion import db


class RegistrationClosed(DomainError):
    message = _("Registration is not open for this event.")


class RegistrationNotYetOpen(RegistrationClosed):
    """Asked before the opening: refused with the opening time (asking early gains nothing)."""

    def __init__(self, opens_at: datetime) -> None:
        from django.utils.formats import date_format

        from events.localtime import local

        super().__init__(_("Registration opens on %(when)s: come back then.")
                         % {"when": date_format(local(opens_at), "l j F Y, H:i")})
        self.opens_at = opens_at


class RegistrationRestricted(DomainError):
    message = _("This event is not open to you: the organisers keep it to some students (the event's page says "
                "who).")


class AlreadyRegistered(DomainError):
    message = _("You are already registered for this event.")


class OverlapsToConfirm(DomainError):
    """The student has confirmed events at the same time: not registered until they confirm (the page lists
    ``titles``, soonest first)."""

    message = _("This event overlaps events you are registered for.")

    def __init__(self, titles: list[str]) -> None:
        super().__init__()
        self.titles = titles


class NoOfferPending(DomainError):
    message = _("No seat is offered to you for this event.")


class OfferExpired(DomainError):
    message = _("Your offer expired and the seat passed to the next in line. You may join the waitlist again.")


@dataclass(frozen=True, slots=True)
class RegistrationOutcome:
    status: RegistrationStatus
    waitlist_position: int | None = None
    registration_id: int | None = field(default=None, compare=False)


async def registration_create(
    session: AsyncSession, *, event_id: int | None = None, slug: str | None = None, user_id: int,
    now: datetime | None = None, check_overlaps: bool = False
) -> RegistrationOutcome:
    """Register ``user_id``: confirmed while seats remain, waitlisted (at the end of the line) when full.

    The event by its id, or by the slug a student's POST names: then an event that is not published is
    ``EventNotFound`` (the page 404s), and the view needs no read of its own before the transaction.
    ``check_overlaps``: a student who has confirmed events at the same time is not registered, and gets
    ``OverlapsToConfirm`` (checked under the lock with the seats, in the same statement).

    Group commit: registrations for the same event that arrive while one is being written wait in this
    process's line for the event and are then written together, in arrival order, by one transaction (see
    ``lines.Line``); each caller gets its own outcome or its own ``DomainError``."""
    key: EventKey
    if event_id is not None:
        key = event_id
    elif slug is not None:
        key = slug
    else:
        raise TypeError("registration_create needs event_id or slug")
    applicant = Applicant(user_id, now or utcnow(), check_overlaps)
    if locks.UNSAFE_RACE_WINDOW_SECONDS:  # the control run: every registration alone, as N processes would
        return await _register_alone(session, key, applicant)
    return await Line.of(key, _register_batch).register(session, applicant)


async def _register_alone(session: AsyncSession, event_key: EventKey, applicant: Applicant) -> RegistrationOutcome:
    await _register_batch(session, event_key, [applicant])
    return outcome_or_raise(applicant.answer.result())


async def _register_batch(session: AsyncSession, event_key: EventKey, batch: list[Applicant]) -> None:
    """Write ``batch`` in one transaction and answer each of its members (its outcome or its own error)."""
    try:
        try:
            async with session.begin():
                event = await locks.event_row_locked(session, event_key)
                if window.lottery_draw_due(event, utcnow()) and visibility.goes_ahead(event.status):
                    # the lottery's window closed: its draw comes first
                    await _draw_locked(session, event, actor_id=None)
                answers = await _place_batch_locked(session, event, batch)
        except IntegrityError:
            # A registration written meanwhile by a path that does not take the event's lock (none should):
            # each member alone, so that only the double gets AlreadyRegistered.
            if len(batch) == 1:
                raise AlreadyRegistered from None
            for member in batch:
                with contextlib.suppress(Exception):  # its answer is set either way
                    async with db.write_session() as alone:
                        await _register_batch(alone, event_key, [member])
            return
    except BaseException as error:
        fail_all(batch, error)  # a DomainError such as EventNotFound is everyone's answer
        raise
    for member, answer in zip(batch, answers, strict=True):
        if not member.answer.done():
            member.answer.set_result(answer)


async def registration_place_locked(
    session: AsyncSession, *, event: Event, user_id: int
) -> RegistrationOutcome:
    """Give ``user_id`` a seat or a place in line. The caller holds the event's lock and checked the rules
    of its own path (the registration window for students; staff may add at any time, a lottery's window
    included: the student gets a seat or a place in line at once, an entry of theirs becoming it)."""
    (answer,) = await _place_batch_locked(session, event, [Applicant(user_id, utcnow())], window_checked=True,
                                          direct=True)
    return outcome_or_raise(answer)


async def _place_batch_locked(
    session: AsyncSession, event: Event, batch: list[Applicant], *, window_checked: bool = False,
    direct: bool = False
) -> list[RegistrationOutcome | DomainError]:
    """Give each applicant of ``batch``, in order, a seat or a place in line, with the rules of one
    registration applied to each in turn (the window at its own time, ``SeatState``, no second registration);
    the answers in the same order. During a lottery window an applicant gets an entry in the draw instead
    (no seat, no place in line; a second ask gets the same entry). ``direct``: placed now whatever the
    lottery says, an entry becoming a seat or a place in line (the draw, whose applicants are the entries in
    drawn order; staff adding a student). The caller holds the event's lock."""
    rows = (await session.execute(batch_statements.PLACE_STATE[db.dialect_name(session)], {
        "event_id": event.id, "user_ids": [member.user_id for member in batch],
        "check_ids": [member.user_id for member in batch if member.check_overlaps],
        "starts_at": event.starts_at, "ends_at": event.ends_at})).all()
    overlaps: dict[int, list[str]] = {}
    existing = {}
    for row in rows:
        if row.overlap_title is not None:
            overlaps.setdefault(row.user_id, []).append(row.overlap_title)
        elif row.taken is not None:
            counts = row
            if row.user_id is not None:
                existing[row.user_id] = (row.id, row.status)
    seats = SeatState(event.capacity, counts.taken, counts.waitlisted,
                      held_seats(event, counts.reserve_taken, utcnow()))
    if locks.UNSAFE_RACE_WINDOW_SECONDS:
        await asyncio.sleep(locks.UNSAFE_RACE_WINDOW_SECONDS)
    # The place in line is taken now, under the lock, not when the request arrived: lock order is the
    # arrival order that counts, and it keeps positions unique. Strictly after the last one even if the
    # clock stepped back, so the line is the order of the lock, and each place is after the one before.
    last_queued_at = counts.last_queued_at
    # A priority group may open registration earlier for some of the batch (and hold seats for them), a
    # no-show later.
    openings, in_group = await applicants.openings_and_groups(session, event, batch, window_checked=window_checked,
                                                  reserve=seats.held > 0)
    # An event open to some students only: who else asks is refused (staff adding a student, and the draw, place
    # whoever they place).
    refused = set() if direct or restrictions.open_to_everyone(event) else await applicants.not_admitted(
        session, event, [member.user_id for member in batch])
    # An event with required questions: who has not answered them is sent to them (the view saves the answers
    # before it asks for the seat; a page from before the questions did not carry them).
    unanswered = set() if direct or not event.questions else await registration_questions.unanswered(
        session, event, [member.user_id for member in batch])
    answers: list[RegistrationOutcome | DomainError] = []
    placed: list[tuple[int, RegistrationStatus, int | None]] = []
    fresh: list[dict] = []  # new rows, in order
    rejoining: list[dict] = []
    for member in batch:
        opens_at = openings.get(member.user_id)
        if not window_checked and not window.registration_is_open(event, member.now, opens_at):
            not_yet = window.registration_not_yet_open(event, member.now, opens_at)
            answers.append(RegistrationNotYetOpen(opens_at or event.registration_opens_at)  # type: ignore[arg-type]
                           if not_yet else RegistrationClosed())  # (not_yet: it has an opening)
            continue
        if member.user_id in refused:
            answers.append(RegistrationRestricted())
            continue
        if member.user_id in unanswered:
            answers.append(registration_questions.AnswersNeeded())
            continue
        earlier = existing.get(member.user_id)
        entering = not direct and window.in_lottery_window(event, member.now)
        if entering and earlier is not None and earlier[1] == RegistrationStatus.ENTERED:
            answers.append(RegistrationOutcome(status=RegistrationStatus.ENTERED, registration_id=earlier[0]))
            continue
        # Gone (left, or an offer that expired): back at the end of the line.
        replaceable = (RegistrationStatus.CANCELLED, RegistrationStatus.EXPIRED, RegistrationStatus.ENTERED) \
            if direct else (RegistrationStatus.CANCELLED, RegistrationStatus.EXPIRED)
        if earlier is not None and earlier[1] not in replaceable:
            answers.append(AlreadyRegistered())  # also the second click of a double submit in the same batch
            continue
        if member.check_overlaps and member.user_id in overlaps:
            answers.append(OverlapsToConfirm(overlaps[member.user_id]))
            continue
        seat = None if entering else seats.seat_for(in_group=member.user_id in in_group)
        full = seat is None and not entering
        if entering:
            status, position = RegistrationStatus.ENTERED, None
        else:
            status = RegistrationStatus.WAITLISTED if full else RegistrationStatus.CONFIRMED
            position = seats.next_waitlist_position if full else None
        queued_at = utcnow()
        if last_queued_at is not None and queued_at <= last_queued_at:
            queued_at = last_queued_at + timedelta(microseconds=1)
        last_queued_at = queued_at
        earlier_id = earlier[0] if earlier is not None else None
        if earlier_id is not None:  # came back after leaving: joins at the end of the line
            rejoining.append({"registration_id": earlier_id, "new_status": status, "new_queued_at": queued_at,
                              "new_from_reserve": seat == RESERVED})
        else:
            fresh.append({"event_id": event.id, "user_id": member.user_id, "status": status, "queued_at": queued_at,
                          "created_at": queued_at, "updated_at": queued_at, "from_reserve": seat == RESERVED})
        existing[member.user_id] = (earlier_id, status)
        if not entering:
            seats = seats.taking(seat)
        placed.append((member.user_id, status, position))
        answers.append(RegistrationOutcome(status=status, waitlist_position=position, registration_id=earlier_id))
    if not placed:
        return answers
    # Core statements on the session's connection: the ORM's bulk paths add work and nothing we use here.
    connection = await session.connection()
    if rejoining:
        await connection.execute(batch_statements.REJOIN, rejoining)
    placed_ids = tuple(user_id for user_id, *_ in placed)
    if connection.dialect.name == "postgresql":
        # The registrations, their messages and the news in ONE round trip (each costs ~0.15 ms of CPU
        # through the driver and SQLAlchemy, and +100 ms each behind a distant database).
        news = broadcast.news_in_statement(session, event_id=event.id, status=event.status, seats=seats,
                                           user_ids=placed_ids)
        written = await connection.execute(batch_statements.WRITE_BATCH_POSTGRESQL, {
            "event_id": event.id, "user_ids": [row["user_id"] for row in fresh],
            "statuses": [row["status"] for row in fresh], "queued_ats": [row["queued_at"] for row in fresh],
            "from_reserves": [row["from_reserve"] for row in fresh],
            **outbox.as_arrays(outbox.registrations_message_rows(event=event, placed=placed)), **news})
        new_id_of = {row.user_id: row.id for row in written if row.id is not None}
    else:
        new_id_of = {}
        if fresh:
            new_ids = (await connection.execute(batch_statements.INSERT_REGISTRATIONS, fresh)).scalars().all()
            new_id_of = {row["user_id"]: new_id for row, new_id in zip(fresh, new_ids, strict=True)}
        await outbox.registrations_messages(session, event=event, placed=placed)
        # Each placed student now has a registration for the event: what is kept of their own registrations
        # goes.
        await broadcast.seats_changed(session, event_id=event.id, user_ids=placed_ids)
    return [replace(answer, registration_id=new_id_of[member.user_id])
            if isinstance(answer, RegistrationOutcome) and answer.registration_id is None else answer
            for member, answer in zip(batch, answers, strict=True)]


async def waitlist_promote(session: AsyncSession, *, event_id: int) -> tuple[int, ...]:
    """Re-check an event's seats and promote from the waitlist in order (safe to run at any time; the
    operator's ``manage.py promotewaitlist``)."""
    async with session.begin():
        event = await locks.event_locked(session, event_id)
        promoted = await promotions.waitlist_promote_locked(session, event)
        if promoted:
            await audit_log(session, actor_id=None, action="registration.promoted", object_type="event",
                            object_id=event.id, association_id=event.association_id,
                            changes={"promoted_user_ids": [None, list(promoted)]})
        return promoted


@dataclass(frozen=True, slots=True)
class DrawOutcome:
    seed: int
    entries: int
    confirmed: int
    waitlisted: int


async def lottery_draw(
    session: AsyncSession, *, event_id: int, actor_id: int | None = None, early: bool = False
) -> DrawOutcome | None:
    """Draw the seats of a lottery event whose window has closed (``early``: staff closing it now), once:
    None when there is nothing to draw (not a lottery, already drawn, window still open). Safe to run at any
    time from any number of processes: the event's lock and its recorded draw make every later run a no-op."""
    async with session.begin():
        event = await locks.event_row_locked(session, event_id)
        if not visibility.goes_ahead(event.status):  # a cancelled event keeps its entries undrawn
            return None
        now = utcnow()
        due = window.lottery_draw_due(event, now) or (
            early and window.lottery_closes_at(event) is not None and event.lottery_drawn_at is None)
        if not due:
            return None
        return await _draw_locked(session, event, actor_id=actor_id)


_ENTRIES = select(Registration.user_id).where(Registration.event_id == bindparam("event_id"),
                                              Registration.status == RegistrationStatus.ENTERED)


async def _draw_locked(session: AsyncSession, event: Event, *, actor_id: int | None) -> DrawOutcome:
    """The draw, under the event's lock: the entries in an order drawn from a new seed, placed one after the
    other by the registration rule (seats first, then the waitlist in that order; each student told by the
    usual message), the seed and time recorded on the event and in the audit log."""
    # The strongest lock first: entries in flight are drawn, later ones wait for the draw (locks.py).
    await locks.event_draw_locked(session, event.id)
    entries = (await session.execute(_ENTRIES, {"event_id": event.id})).scalars().all()
    seed = lottery.new_seed()
    order = lottery.drawn_order(list(entries), seed)
    now = utcnow()
    answers: list[RegistrationOutcome | DomainError] = []
    for start in range(0, len(order), BATCH_MAX):
        answers += await _place_batch_locked(
            session, event, [Applicant(user_id, now) for user_id in order[start:start + BATCH_MAX]],
            window_checked=True, direct=True)
    outcome = DrawOutcome(seed=seed, entries=len(order), confirmed=sum(
        1 for answer in answers if isinstance(answer, RegistrationOutcome)
        and answer.status == RegistrationStatus.CONFIRMED), waitlisted=sum(
        1 for answer in answers if isinstance(answer, RegistrationOutcome)
        and answer.status == RegistrationStatus.WAITLISTED))
    await session.execute(update(Event).where(Event.id == event.id).values(
        lottery_seed=seed, lottery_drawn_at=now, lottery_drawn_by_id=actor_id))
    await audit_log(session, actor_id=actor_id, action="lottery.drawn", object_type="event", object_id=event.id,
                    association_id=event.association_id,
                    changes={"seed": [None, str(seed)], "entries": [None, outcome.entries],
                             "confirmed": [None, outcome.confirmed], "waitlisted": [None, outcome.waitlisted]})
    if not order:  # no batch told the pages: the event's page still changes (the draw is done)
        await broadcast.seats_changed(session, event_id=event.id)
    return outcome


async def registrants_not_admitted(session: AsyncSession, event: Event) -> set[int]:
    """The students registered now (a live registration) whom ``event``'s restriction would not admit: after
    an organiser narrows who may register, they keep their place and the organiser is told how many."""
    if restrictions.open_to_everyone(event):
        return set()
    user_ids = list((await session.execute(select(Registration.user_id).where(
        Registration.event_id == event.id, Registration.status.in_(LIVE_STATUSES)))).scalars())
    return await applicants.not_admitted(session, event, user_ids) if user_ids else set()
