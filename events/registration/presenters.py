"""My events as the page shows them: the student's registrations, upcoming first, overlaps flagged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import translation

from events.catalog.presenters import EventCard, event_card, moment_label, registration_status_label
from events.models import RegistrationStatus
from events.registration.queries import MyEventRow
from events.registration.questions import AnswersForm
from events.rules import questions as question_rules
from events.rules import seats, tickets, visibility


@dataclass(frozen=True, slots=True)
class MyEventCard:
    card: EventCard
    status: str
    status_label: str
    waitlist_position: int | None
    overlaps_with: list[str]
    offer_deadline_label: str = ""  # a seat offered: until when it may be accepted
    ticket_id: int | None = None  # a confirmed seat at an event going ahead and not over: its ticket page


def my_events(rows: list[MyEventRow], *, now: datetime) -> dict:
    """My events: upcoming first (soonest first), then past (latest first); overlapping confirmed ones flagged."""
    active = [row for row in rows if row.status == RegistrationStatus.CONFIRMED
              and visibility.goes_ahead(row.event.status) and row.event.ends_at >= now]
    overlaps: dict[int, list[str]] = {}
    for index, first in enumerate(active):
        for second in active[index + 1:]:
            if first.event.starts_at < second.event.ends_at and second.event.starts_at < first.event.ends_at:
                overlaps.setdefault(first.event.id, []).append(second.event.title)
                overlaps.setdefault(second.event.id, []).append(first.event.title)

    def card(row: MyEventRow) -> MyEventCard:
        label = registration_status_label(row.status)
        if visibility.is_cancelled(row.event.status):
            label = translation.gettext("Event cancelled")
        deadline = moment_label(row.offer_expires_at) \
            if row.status == RegistrationStatus.OFFERED and row.offer_expires_at else ""
        has_ticket = row.registration_id and tickets.has_ticket(
            status=row.status, event_status=row.event.status, event_ends_at=row.event.ends_at, now=now)
        return MyEventCard(event_card(row.event), row.status.value, label, row.waitlist_position,
                           overlaps.get(row.event.id, []), deadline,
                           ticket_id=row.registration_id if has_ticket else None)

    upcoming = [card(row) for row in rows if row.event.ends_at >= now]
    past = [card(row) for row in reversed(rows) if row.event.ends_at < now]
    return {"upcoming": upcoming, "past": past, "overlap_count": len(overlaps)}


@dataclass(frozen=True, slots=True)
class AnswersBox:
    """The event page's part about the organisers' questions, for a logged-in student."""

    form: AnswersForm  # the questions, filled with what the student gave
    placed: bool  # the student holds a place or waits for one: their answers are shown, and may change
    open: bool  # answers may still change
    given: list[tuple[str, str]]  # (question, answer as shown) for each question
    missing: bool  # a required question has no answer yet (added after the student registered)
    closes_label: str


def answers_box(event, answers: dict[str, str], *, now: datetime) -> AnswersBox:
    asked = question_rules.questions_of(event)
    placed = event.mine is not None and event.mine.status in seats.LIVE_STATUSES
    return AnswersBox(
        form=AnswersForm(questions=asked, answers=answers), placed=placed,
        open=question_rules.answers_open(event, now),
        given=[(question.label, question.shown(answers.get(question.id))) for question in asked],
        missing=placed and bool(question_rules.unanswered_required(asked, answers)),
        closes_label=moment_label(question_rules.answers_close_at(event)))
