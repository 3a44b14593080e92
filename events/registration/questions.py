"""A student's answers to an event's registration questions: the form that asks them (on the event page, with
the register button, and to change them later), their storage and their reads. The rule (what a question may
be, until when answers may change) is events/rules/questions.py.

Answers are kept in ``registration_answers``, one row per student and event, written before the registration
itself in a transaction of their own: the seat writers stay as they are, and a registration refused after
(closed meanwhile) leaves answers that nothing shows, and that the student's next try finds filled in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from django import forms
from django.utils.translation import gettext_lazy as _
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from events.errors import DomainError, EventNotFound
from events.models import Event, Registration, RegistrationAnswers, utcnow
from events.rules import questions as rules
from events.rules import seats, visibility
from events.rules.text import plain_text
from hyperion import db


class AnswersClosed(DomainError):
    message = _("Answers to this event's questions can no longer be changed.")


class QuestionsChanged(DomainError):
    message = _("The organisers changed the questions meanwhile: check your answers and send them again.")


class NotRegistered(DomainError):
    message = _("Only this event's registrants may change their answers: register first.")


class AnswersNeeded(DomainError):
    message = _("This event's organisers ask a few questions: answer them to register.")


async def unanswered(session: AsyncSession, event, user_ids: list[int]) -> set[int]:
    """Those of ``user_ids`` who have not answered ``event``'s required questions (the registration service
    asks, under the event's lock, for an event with questions only)."""
    asked = rules.questions_of(event)
    if not any(question.required for question in asked):
        return set()
    rows = await session.execute(select(RegistrationAnswers.user_id, RegistrationAnswers.answers).where(
        RegistrationAnswers.event_id == event.id, RegistrationAnswers.user_id.in_(user_ids)))
    given = {row.user_id: row.answers for row in rows}
    return {user_id for user_id in user_ids if rules.unanswered_required(asked, given.get(user_id))}


def field_name(question: rules.Question) -> str:
    return f"answer_{question.id}"


class AnswersForm(forms.Form):
    """One field per question, named after the question's id (a question removed meanwhile is simply not asked
    any more; its answer is not read)."""

    def __init__(self, *args, questions: Sequence[rules.Question], answers: Mapping[str, str] | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.questions = tuple(questions)
        for question in self.questions:
            self.fields[field_name(question)] = _field(question, (answers or {}).get(question.id))

    def answers(self) -> dict[str, str]:
        """{question id: answer} of the questions answered (call after is_valid())."""
        return {question.id: value for question in self.questions
                if (value := self.cleaned_data.get(field_name(question)))}


def _field(question: rules.Question, initial: str | None) -> forms.Field:
    common = {"label": question.label, "required": question.required, "initial": initial}
    if question.kind == "choice":
        blank = [] if question.required and initial else [("", _("Choose…"))]
        return forms.ChoiceField(choices=[*blank, *((choice, choice) for choice in question.choices)], **common)
    if question.kind == "yes_no":
        return forms.ChoiceField(choices=[(rules.YES, _("Yes")), (rules.NO, _("No"))], widget=forms.RadioSelect,
                                 **common)
    return forms.CharField(max_length=rules.TEXT_ANSWER_MAX, validators=[plain_text()], **common)


async def answers_of(session: db.Reader, *, event_id: int, user_id: int) -> dict[str, str]:
    row = (await session.execute(select(RegistrationAnswers.answers).where(
        RegistrationAnswers.event_id == event_id, RegistrationAnswers.user_id == user_id))).scalar_one_or_none()
    return dict(row or {})


async def answers_by_student(session: db.Reader, *, event_id: int) -> dict[int, dict[str, str]]:
    """Every student's answers for the event (the attendees list, its CSV and statistics join them)."""
    rows = await session.execute(select(RegistrationAnswers.user_id, RegistrationAnswers.answers)
                                 .where(RegistrationAnswers.event_id == event_id))
    return {row.user_id: dict(row.answers or {}) for row in rows}


async def answers_save(session: AsyncSession, *, event_id: int, user_id: int, answers: Mapping[str, str],
                       registering: bool = False, now: datetime | None = None) -> None:
    """Store the student's answers, checked against the questions the event asks now (the form may have been
    built from older ones): an answer that is no longer possible, or a required question added since, is
    ``QuestionsChanged``. Past the deadline a change is ``AnswersClosed``, and from a student without a live
    registration (``seats.LIVE_STATUSES``) ``NotRegistered``; the answers that come with a registration are
    always taken (the registration window decides whether it may be made)."""
    now = now or utcnow()
    async with session.begin():
        event = (await session.execute(select(Event.questions, Event.answers_close_at, Event.starts_at,
                                              Event.status).where(Event.id == event_id))).one_or_none()
        if event is None or not visibility.is_published(event.status):
            raise EventNotFound
        if not registering and not rules.answers_open(event, now):
            raise AnswersClosed
        if not registering and (await session.execute(select(Registration.status).where(
                Registration.event_id == event_id, Registration.user_id == user_id))).scalar_one_or_none() \
                not in seats.LIVE_STATUSES:
            raise NotRegistered
        asked = rules.questions_of(event)
        kept = rules.current_answers(asked, answers)
        if any(not question.accepts(kept[question.id]) for question in asked if question.id in kept) \
                or rules.unanswered_required(asked, kept):
            raise QuestionsChanged
        await session.execute(
            db.insert_for(session)(RegistrationAnswers)
            .values(event_id=event_id, user_id=user_id, answers=kept, updated_at=now)
            .on_conflict_do_update(index_elements=["event_id", "user_id"], set_={"answers": kept, "updated_at": now}))
