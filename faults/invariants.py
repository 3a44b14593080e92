"""The invariants of seats, waitlists, audit and outbox, checked on a database after anything happened
to it (a fault, a crash, a random interleaving). ``check_invariants(url)`` returns the violations (empty:
all hold); ``invariant_report(url)`` also says how many checks ran.

They hold for data written through the services (events.registration.services, events.staff.services,
events.staff.people); the events of a scenario may be inserted directly, as long as they start approved and
nothing else is.

1. capacity          seats taken (confirmed, and offered not answered yet) ≤ capacity, for every event
2. one_per_user      one registration per (event, user)
3. no_free_seat      an approved event with people waiting has no free seat (and no waitlist without capacity);
                     while it holds seats for its priority groups, no free seat but those held
4. waitlist_order    approved events: every seat holder (confirmed or offered) was queued before every
                     waitlisted registration, but for seats held for the priority groups
5. positions         the site's waitlist positions are 1..n, unique, in (queued_at, id) order
6. outbox_match      per (user, event): registration messages (confirmed/waitlisted) minus exits (left/removed,
                     offer expired) = 1 for an active registration (confirmed, offered, waitlisted), 0 otherwise;
                     no registration message without its row
7. reminders         a confirmed seat of an approved event (10+ days ahead) has one pending reminder; a pending
                     reminder belongs to a confirmed seat of an approved event
8. cancel_messages   a cancelled event told each of its registrants; an approved one told nobody
9. audit_status      each event.cancelled audit entry has its cancelled event, and each cancelled event its entry
10. audit_capacity   the event.updated entries of an event chain its capacity values and end at the current one
11. audit_added      each registration.added entry names an existing registration of that user and event
12. entries          an entry in a draw belongs to a lottery event not drawn yet (a draw leaves no entry)
13. lottery_draws    an event's draw is recorded once: drawn ⇔ one lottery.drawn audit entry, with its seed
14. offers           a registration has an offer's deadline ⇔ it is offered or its offer expired; each offer
                     was told to its student (one registration.offered message per offer made)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.pool import NullPool

from events.models import (
    AuditEntry,
    Event,
    EventStatus,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    utcnow,
)
from events.rules.seats import held_seats, waitlist_position_of

CHECKS = ("capacity", "one_per_user", "no_free_seat", "waitlist_order", "positions", "outbox_match", "reminders",
          "cancel_messages", "audit_status", "audit_capacity", "audit_added", "entries", "lottery_draws", "offers")
JOINS = ("registration.confirmed", "registration.waitlisted")
EXITS = ("registration.left", "registration.removed", "registration.offer_expired")
ACTIVE = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED, RegistrationStatus.WAITLISTED)
HOLDERS = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED)


@dataclass
class InvariantReport:
    violations: list[str] = field(default_factory=list)
    failed_checks: set[str] = field(default_factory=set)
    registrations: int = 0
    events: int = 0

    @property
    def checks(self) -> int:
        return len(CHECKS)

    @property
    def passed(self) -> int:
        return len(CHECKS) - len(self.failed_checks)

    def fail(self, check: str, message: str) -> None:
        self.failed_checks.add(check)
        self.violations.append(f"{check}: {message}")

    def summary(self) -> str:
        return f"{self.passed}/{self.checks} passed ({self.events} events, {self.registrations} registrations)"


async def check_invariants(url: str) -> list[str]:
    """Every violated invariant of the database at ``url``, one line each (empty: all hold)."""
    return (await invariant_report(url)).violations


async def invariant_report(url: str) -> InvariantReport:
    from hyperion import db

    engine = db.engine_create(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            events = (await connection.execute(
                select(Event.id, Event.capacity, Event.status, Event.starts_at, Event.lottery_minutes,
                       Event.lottery_drawn_at, Event.lottery_seed, Event.reserved_seats, Event.reserved_until))).all()
            registrations = (await connection.execute(
                select(Registration.id, Registration.event_id, Registration.user_id, Registration.status,
                       Registration.queued_at, waitlist_position_of(Registration).label("position"),
                       Registration.offer_expires_at, Registration.from_reserve))).all()
            outbox = (await connection.execute(
                select(OutboxMessage.kind, OutboxMessage.recipient_id, OutboxMessage.event_id, OutboxMessage.status,
                       OutboxMessage.dedupe_key))).all()
            audit = (await connection.execute(
                select(AuditEntry.id, AuditEntry.action, AuditEntry.object_type, AuditEntry.object_id,
                       AuditEntry.changes).order_by(AuditEntry.id))).all()
    finally:
        await engine.dispose()
    return _check(events, registrations, outbox, audit)


def _check(events, registrations, outbox, audit) -> InvariantReport:
    report = InvariantReport(registrations=len(registrations), events=len(events))
    now = utcnow()
    event_by_id = {row.id: row for row in events}
    by_event: dict[int, list] = defaultdict(list)
    for row in registrations:
        by_event[row.event_id].append(row)
    by_key: dict[tuple[int, int], list] = defaultdict(list)
    for row in registrations:
        by_key[(row.user_id, row.event_id)].append(row)

    # 2. one registration per (event, user)
    for (user_id, event_id), rows in by_key.items():
        if len(rows) > 1:
            report.fail("one_per_user", f"user {user_id} has {len(rows)} registrations for event {event_id}")

    for event in events:
        rows = by_event.get(event.id, [])
        confirmed = [row for row in rows if row.status in HOLDERS]  # seats taken
        waitlisted = [row for row in rows if row.status == RegistrationStatus.WAITLISTED]
        # 1. capacity
        if event.capacity is not None and len(confirmed) > event.capacity:
            report.fail("capacity", f"event {event.id}: {len(confirmed)} seats taken for {event.capacity} seats")
        if event.status == EventStatus.APPROVED and waitlisted:
            # 3. nobody waits while a seat is free (but one held for the priority groups)
            held = held_seats(event, sum(row.from_reserve for row in confirmed), now)
            if event.capacity is None or len(confirmed) + held < event.capacity:
                report.fail("no_free_seat", f"event {event.id}: {len(waitlisted)} waiting with "
                                            f"{len(confirmed)}/{event.capacity} seats taken, {held} held")
            # 4. confirmed before waitlisted (a seat held for the groups goes to them whenever they come)
            in_order = [row for row in confirmed if not row.from_reserve]
            if in_order:
                last_confirmed = max((row.queued_at, row.id) for row in in_order)
                first_waiting = min((row.queued_at, row.id) for row in waitlisted)
                if last_confirmed > first_waiting:
                    report.fail("waitlist_order", f"event {event.id}: registration {last_confirmed[1]} confirmed "
                                                  f"although {first_waiting[1]} was queued before it and waits")
        # 5. positions 1..n in (queued_at, id) order
        in_order = sorted(waitlisted, key=lambda row: (row.queued_at, row.id))
        positions = [row.position for row in in_order]
        if positions != list(range(1, len(in_order) + 1)):
            report.fail("positions",
                        f"event {event.id}: waitlist positions {positions[:20]} are not 1..{len(in_order)}")

    # 6. outbox registration messages match the registrations
    joins: Counter = Counter()
    exits: Counter = Counter()
    promoted: Counter = Counter()
    for message in outbox:
        key = (message.recipient_id, message.event_id)
        if message.kind in JOINS:
            joins[key] += 1
        elif message.kind in EXITS:
            exits[key] += 1
        elif message.kind == "registration.promoted":
            promoted[key] += 1
    for key in set(joins) | set(exits) | set(promoted):
        if key not in by_key:
            report.fail("outbox_match", f"user {key[0]} event {key[1]}: registration messages without a registration")
    for key, rows in by_key.items():
        active = any(row.status in ACTIVE for row in rows)
        if joins[key] - exits[key] != (1 if active else 0):
            report.fail("outbox_match", f"user {key[0]} event {key[1]} ({rows[0].status}): {joins[key]} "
                                        f"registration message(s), {exits[key]} exit message(s)")

    # 7. reminders follow confirmed seats
    pending_reminders: Counter = Counter()
    for message in outbox:
        if message.kind == "event.reminder" and message.status == OutboxStatus.PENDING:
            pending_reminders[(message.recipient_id, message.event_id)] += 1
    reminder_horizon = utcnow() + timedelta(days=2)
    for key, count in pending_reminders.items():
        event = event_by_id.get(key[1])
        statuses = {row.status for row in by_key.get(key, [])}
        if count > 1 or event is None or event.status != EventStatus.APPROVED or \
                RegistrationStatus.CONFIRMED not in statuses:
            report.fail("reminders", f"user {key[0]} event {key[1]}: {count} pending reminder(s) for "
                                     f"{sorted(statuses) or 'no registration'}")
    for row in registrations:
        event = event_by_id[row.event_id]
        if row.status == RegistrationStatus.CONFIRMED and event.status == EventStatus.APPROVED and \
                event.starts_at > reminder_horizon and not pending_reminders[(row.user_id, row.event_id)]:
            report.fail("reminders", f"user {row.user_id} event {row.event_id}: confirmed without a pending reminder")

    # 8. cancellation messages
    cancel_told: dict[int, Counter] = defaultdict(Counter)
    for message in outbox:
        if message.kind == "event.cancelled":
            cancel_told[message.event_id][message.recipient_id] += 1
    for event in events:
        told = cancel_told.get(event.id, Counter())
        if event.status == EventStatus.CANCELLED:
            for row in by_event.get(event.id, []):
                if row.status in ACTIVE and told[row.user_id] != 1:
                    report.fail("cancel_messages", f"event {event.id}: registrant {row.user_id} told "
                                                   f"{told[row.user_id]} time(s) of the cancellation")
        elif told:
            report.fail("cancel_messages", f"event {event.id} ({event.status}) sent {sum(told.values())} "
                                           "cancellation message(s)")

    # 9-11. audit entries match the changes
    cancelled_entries: Counter = Counter()
    capacity_chain: dict[int, list] = defaultdict(list)
    registration_by_id = {row.id: row for row in registrations}
    for entry in audit:
        changes = entry.changes or {}
        if entry.action == "event.cancelled":
            cancelled_entries[entry.object_id] += 1
        elif entry.action == "event.updated" and "capacity" in changes:
            capacity_chain[entry.object_id].append(changes["capacity"])
        elif entry.action == "registration.added":
            row = registration_by_id.get(entry.object_id)
            expected = (changes.get("event_id", [None, None])[1], changes.get("user_id", [None, None])[1])
            if row is None or (row.event_id, row.user_id) != expected:
                report.fail("audit_added", f"audit entry {entry.id}: registration {entry.object_id} "
                                           f"{'missing' if row is None else 'of another user or event'}")
    for event in events:
        count = cancelled_entries.get(event.id, 0)
        if (event.status == EventStatus.CANCELLED) != (count == 1) or count > 1:
            report.fail("audit_status", f"event {event.id} ({event.status}) has {count} event.cancelled entries")
        chain = capacity_chain.get(event.id)
        if chain:
            links = all(previous[1] == following[0] for previous, following in zip(chain, chain[1:], strict=False))
            if not links or chain[-1][1] != event.capacity:
                report.fail("audit_capacity", f"event {event.id}: capacity {event.capacity}, audit chain {chain}")
    for event_id in set(cancelled_entries) - set(event_by_id):
        report.fail("audit_status", f"event.cancelled entry for missing event {event_id}")

    # 12. entries only while a lottery waits for its draw
    for row in registrations:
        event = event_by_id[row.event_id]
        if row.status == RegistrationStatus.ENTERED and (event.lottery_minutes is None or event.lottery_drawn_at):
            report.fail("entries", f"registration {row.id}: an entry in event {event.id}, which "
                                   f"{'was drawn' if event.lottery_minutes else 'opens first come'}")
    # 13. one recorded draw per drawn event, with its seed
    draws: dict[int, list] = defaultdict(list)
    for entry in audit:
        if entry.action == "lottery.drawn":
            draws[entry.object_id].append((entry.changes or {}).get("seed", [None, None])[1])
    for event in events:
        seeds = draws.get(event.id, [])
        drawn = event.lottery_drawn_at is not None
        if (drawn and seeds != [str(event.lottery_seed)]) or (not drawn and seeds):
            report.fail("lottery_draws", f"event {event.id} ({'drawn' if drawn else 'not drawn'}, seed "
                                         f"{event.lottery_seed}): draws recorded with seeds {seeds}")
    # 14. offers: a deadline exactly on offers (pending or expired), and each offer told
    offers_told: Counter = Counter()
    for message in outbox:
        if message.kind == "registration.offered":
            offers_told[(message.recipient_id, message.event_id)] += 1
    for row in registrations:
        offer_state = row.status in (RegistrationStatus.OFFERED, RegistrationStatus.EXPIRED)
        if offer_state != (row.offer_expires_at is not None):
            report.fail("offers", f"registration {row.id} ({row.status}): offer deadline {row.offer_expires_at}")
        if offer_state and not offers_told[(row.user_id, row.event_id)]:
            report.fail("offers", f"registration {row.id} ({row.status}): its student was never told of the offer")
    return report
