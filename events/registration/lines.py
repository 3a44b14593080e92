"""Group commit: one event's line of requests in this process, written in batches.

A request that arrives while the line is idle is written at once; requests that arrive while a batch is
being written wait, and the first of them then writes them all together, one transaction for the batch. The
writer says what a batch is: registrations (services._register_batch, under the event's lock) or a lottery's
entries (lottery._enter_batch, without it). Each applicant gets its own answer, or its own error.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _
from sqlalchemy.ext.asyncio import AsyncSession

from events.errors import DomainError
from hyperion import turns


class RegistrationAbandoned(DomainError):
    message = _("You left the page before your registration was written: you are not registered.")


# An event as a registration names it: its id (commands, staff, tests) or its slug (a student's POST).
EventKey = int | str


@dataclass(slots=True)
class Applicant:
    """One registration request in an event's line: who, when it asked (for the window rule), and the answer
    its caller awaits (a ``RegistrationOutcome``, a ``DomainError``, or ``_LEAD``: write the next batch)."""

    user_id: int
    now: datetime
    check_overlaps: bool = False
    answer: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    in_batch: bool = False


_LEAD = object()  # the answer that makes a waiting applicant the writer of the next batch

# Writes a batch in one transaction and answers each of its applicants (services._register_batch).
BatchWriter = Callable[[AsyncSession, "EventKey", "list[Applicant]"], Awaitable[None]]

# At most this many registrations per transaction: bounds the statements' parameters (SQLite allows 32,766;
# a confirmed registration writes two outbox rows of 10 columns) and how long one batch holds the lock.
BATCH_MAX = 200


class Line:
    """One event's line of registrations in this process (per event loop).

    Without it, each registration of a rush runs its own transaction of seven round trips while holding the
    event's row lock, each round trip waiting for the busy event loop to come back to it: the lock was held
    for milliseconds per student and 2,000 students took ~19 s (bench/README.md). Here, whoever arrives while
    the line is idle writes at once; whoever arrives while a batch is being written waits (giving back its
    admission turn, so that the next requests can get this far meanwhile), and when the batch commits the
    first in line writes everyone waiting, with its own session: one lock, one state query, one INSERT, one
    outbox statement, one ``pg_notify``, one COMMIT for all of them. Several processes each batch their
    own; their batches serialise on the event's row lock, so the rule holds across processes as before.
    """

    _lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, Line]] = \
        weakref.WeakKeyDictionary()

    def __init__(self, event_key: EventKey, writer: BatchWriter, line_key: tuple) -> None:
        self.event_key = event_key
        self.writer = writer
        self.line_key = line_key
        self.waiting: deque[Applicant] = deque()
        self.writing = False

    @classmethod
    def of(cls, event_key: EventKey, writer: BatchWriter) -> Line:
        """The line of ``event_key`` for ``writer`` (registrations, services._register_batch; a lottery's
        entries have a line of their own, written by their own statement)."""
        lines = cls._lines.setdefault(asyncio.get_running_loop(), {})
        line_key = (writer, event_key)
        line = lines.get(line_key)
        if line is None:
            line = lines[line_key] = cls(event_key, writer, line_key)
        return line

    async def register(self, session: AsyncSession, applicant: Applicant) -> Any:
        self.waiting.append(applicant)
        if self.writing:
            try:
                answer = await turns.wait_aside(applicant.answer)
            except turns.ClientLeft:
                if not applicant.in_batch:
                    self._leave_line(applicant)
                    raise RegistrationAbandoned from None
                answer = await applicant.answer  # being written: the outcome is what it is
            except BaseException:
                self._leave_line(applicant)
                raise
            if answer is not _LEAD:
                return outcome_or_raise(answer)
            applicant.answer = asyncio.get_running_loop().create_future()  # for its own answer in the batch
        self.writing = True
        try:
            batch = [self.waiting.popleft() for _ in range(min(len(self.waiting), BATCH_MAX))]
            for member in batch:
                member.in_batch = True
            await self.writer(session, self.event_key, batch)
        finally:
            self._hand_over()
        return outcome_or_raise(applicant.answer.result())

    def _leave_line(self, applicant: Applicant) -> None:
        """The waiting caller was cancelled or its client left. Not yet in a batch: it leaves the line and is
        never registered. Made the writer of the next batch: it passes that on. Already in a batch: the batch
        goes on (the student is registered or not, whole, as that transaction decides)."""
        answer = applicant.answer
        if answer.done() and not answer.cancelled() and answer.result() is _LEAD:
            self.waiting.remove(applicant)
            self._hand_over()
        elif not applicant.in_batch:
            with contextlib.suppress(ValueError):
                self.waiting.remove(applicant)

    def _hand_over(self) -> None:
        """The batch is written (or failed): the first in line writes the next one, if any."""
        while self.waiting:
            head = self.waiting[0]
            if not head.answer.done():
                head.answer.set_result(_LEAD)
                return
            self.waiting.popleft()  # gave up meanwhile
        self.writing = False
        lines = self._lines.get(asyncio.get_running_loop(), {})
        if lines.get(self.line_key) is self:
            del lines[self.line_key]


def fail_all(batch: list[Applicant], error: BaseException) -> None:
    """The batch failed as one transaction (rolled back; or cancelled, at a shutdown, with the outcome
    unknown): each member not answered yet gets the error, as it would have alone."""
    for member in batch:
        if not member.answer.done():
            member.answer.set_result(error if isinstance(error, Exception) else RuntimeError(
                "the request was interrupted before it was written"))


def outcome_or_raise(answer):
    """The applicant's answer, or its error raised."""
    if isinstance(answer, BaseException):
        raise answer
    return answer
