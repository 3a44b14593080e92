"""Registration questions: what a question may be, until when answers may change, which required ones are
still unanswered, and how many gave each answer. The forms (events/registration/questions.py), the services
that store questions and answers, the attendees list, its CSV and the statistics all read the rule here.

An event's questions are stored on the event as a JSON list (``Event.questions``), each with an id that is
never reused: an answer given to a question that was removed since is never taken for another question's.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.utils.translation import gettext as _

KINDS = ("text", "choice", "yes_no")
QUESTIONS_MAX = 10
LABEL_MAX = 200
CHOICES_MAX = 20
CHOICE_MAX = 100
TEXT_ANSWER_MAX = 500
YES, NO = "yes", "no"


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    kind: str
    label: str
    choices: tuple[str, ...] = ()
    required: bool = False

    @classmethod
    def new(cls, *, kind: str, label: str, choices: Sequence[str] = (), required: bool = False) -> Question:
        return cls(secrets.token_hex(4), kind, label, tuple(choices) if kind == "choice" else (), required)

    @classmethod
    def stored(cls, value: Mapping[str, Any]) -> Question:
        return cls(str(value["id"]), str(value["kind"]), str(value["label"]),
                   tuple(str(choice) for choice in value.get("choices") or ()), bool(value.get("required")))

    def as_stored(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, "choices": list(self.choices),
                "required": self.required}

    def accepts(self, answer: str) -> bool:
        """Whether ``answer`` is a possible answer (a choice offered now, yes or no, a text short enough)."""
        if self.kind == "choice":
            return answer in self.choices
        if self.kind == "yes_no":
            return answer in (YES, NO)
        return 0 < len(answer) <= TEXT_ANSWER_MAX

    def shown(self, answer: str | None) -> str:
        """The answer as people read it ("" when not answered)."""
        if answer is None:
            return ""
        if self.kind == "yes_no":
            return str(_("Yes") if answer == YES else _("No"))
        return answer


class HasQuestions(Protocol):
    @property
    def questions(self) -> list[dict[str, Any]] | None: ...

    @property
    def answers_close_at(self) -> datetime | None: ...

    @property
    def starts_at(self) -> datetime: ...


def questions_of(event: HasQuestions) -> tuple[Question, ...]:
    return tuple(Question.stored(value) for value in event.questions or ())


def copied(questions: Iterable[Question]) -> tuple[Question, ...]:
    """The same questions for a copy of the event, each with an id of its own (answers never cross events)."""
    return tuple(Question.new(kind=question.kind, label=question.label, choices=question.choices,
                              required=question.required) for question in questions)


def answers_close_at(event: HasQuestions) -> datetime:
    """Until when answers may change: the moment the editors set, or else the event's start."""
    return event.answers_close_at or event.starts_at


def answers_open(event: HasQuestions, now: datetime) -> bool:
    return now < answers_close_at(event)


def current_answers(questions: Iterable[Question], answers: Mapping[str, str] | None) -> dict[str, str]:
    """The answers to the questions asked now (answers to removed questions are dropped)."""
    answers = answers or {}
    return {question.id: answers[question.id] for question in questions if question.id in answers}


def unanswered_required(questions: Iterable[Question], answers: Mapping[str, str] | None) -> list[Question]:
    answers = answers or {}
    return [question for question in questions if question.required and not answers.get(question.id)]


def answer_counts(questions: Iterable[Question],
                  everyone: Iterable[Mapping[str, str] | None]) -> dict[str, Counter[str]]:
    """For each question, how many gave each answer (as shown), among ``everyone``'s answers."""
    asked = list(questions)
    counts: dict[str, Counter[str]] = {question.id: Counter() for question in asked}
    for answers in everyone:
        for question in asked:
            value = (answers or {}).get(question.id)
            if value:
                counts[question.id][question.shown(value) if question.kind != "text" else value] += 1
    return counts
