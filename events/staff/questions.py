"""Writes of an event's registration questions: add one, remove one (its answers go with it), set until when
answers may change. Same habits as ``events.staff.services``: each function owns its transaction, checks
permissions inside it (``rules.permissions.can_edit_questions``) and writes its audit entry in it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.translation import gettext_lazy as _
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from events.audit import audit_log
from events.errors import DomainError, Forbidden, NotFound
from events.live import broadcast
from events.models import Event, RegistrationAnswers, utcnow
from events.rules import permissions
from events.rules import questions as rules
from events.rules.permissions import Actor
from events.staff.services import event_for_actor


class TooManyQuestions(DomainError):
    message = _("An event asks ten questions at most: remove one first.")  # rules.QUESTIONS_MAX


async def _editable(session: AsyncSession, actor: Actor, event_id: int) -> Event:
    event = await event_for_actor(session, actor, event_id, lock=True)
    if not permissions.can_edit_questions(actor, association_id=event.association_id, status=event.status):
        raise Forbidden
    return event


async def _saved(session: AsyncSession, event: Event, asked: Sequence[rules.Question]) -> None:
    event.questions = [question.as_stored() for question in asked]
    event.updated_at = utcnow()
    await broadcast.seats_changed(session, event_id=event.id)  # the pages kept of it show the questions


async def question_add(session: AsyncSession, *, actor: Actor, event_id: int, kind: str, label: str,
                       choices: Sequence[str] = (), required: bool = False) -> rules.Question:
    async with session.begin():
        event = await _editable(session, actor, event_id)
        asked = rules.questions_of(event)
        if len(asked) >= rules.QUESTIONS_MAX:
            raise TooManyQuestions
        question = rules.Question.new(kind=kind, label=label, choices=choices, required=required)
        await _saved(session, event, (*asked, question))
        await audit_log(session, actor_id=actor.id, action="event.question_added", object_type="event",
                        object_id=event.id, association_id=event.association_id,
                        changes={"question": [None, question.as_stored()]})
    return question


async def question_remove(session: AsyncSession, *, actor: Actor, event_id: int, question_id: str) -> int:
    """Remove the question and every answer given to it; return how many students had answered it."""
    async with session.begin():
        event = await _editable(session, actor, event_id)
        asked = rules.questions_of(event)
        removed = next((question for question in asked if question.id == question_id), None)
        if removed is None:
            raise NotFound
        await _saved(session, event, [question for question in asked if question.id != question_id])
        answered = 0
        rows = await session.execute(select(RegistrationAnswers.user_id, RegistrationAnswers.answers)
                                     .where(RegistrationAnswers.event_id == event.id))
        for row in rows.all():  # a few thousand rows at most; JSON edits differ between the databases
            if question_id in (row.answers or {}):
                answered += 1
                await session.execute(update(RegistrationAnswers).where(
                    RegistrationAnswers.event_id == event.id, RegistrationAnswers.user_id == row.user_id).values(
                    answers={key: value for key, value in row.answers.items() if key != question_id}))
        await audit_log(session, actor_id=actor.id, action="event.question_removed", object_type="event",
                        object_id=event.id, association_id=event.association_id,
                        changes={"question": [removed.as_stored(), None], "answers_removed": [None, answered]})
    return answered


async def answers_deadline_set(session: AsyncSession, *, actor: Actor, event_id: int,
                               answers_close_at: datetime | None) -> None:
    async with session.begin():
        event = await _editable(session, actor, event_id)
        before = event.answers_close_at
        if before == answers_close_at:
            return
        event.answers_close_at = answers_close_at
        event.updated_at = utcnow()
        await broadcast.seats_changed(session, event_id=event.id)
        await audit_log(session, actor_id=actor.id, action="event.updated", object_type="event", object_id=event.id,
                        association_id=event.association_id, changes={"answers_close_at": [before, answers_close_at]})
