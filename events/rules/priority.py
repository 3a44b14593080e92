"""Priority openings: the one rule for "when does registration open for this student".

An event that opens at a set time (``Event.registration_opens_at``) may open earlier for groups of students,
each group at its own time (concrexit's member-first, Lego's pools): the members of the organising
association (``members_open_at``), some promo years (``priority_promos`` from ``promos_open_at``), a list of
e-mail addresses (``priority_emails`` from ``emails_open_at``). Groups come from what the site knows: the
promo given at sign-up, the association's memberships, the addresses the organisers typed. At the event's
own opening every group merges into one pool: everyone may register, first come. A student in several
groups gets the earliest of their openings.

The event page (its button, countdown and wording) and the registration service ask the same function,
``opening_for``, so they never disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol


class Prioritised(Protocol):
    """What the rule reads of an event (read-only, so that frozen rows qualify)."""

    @property
    def association_id(self) -> int: ...

    @property
    def registration_opens_at(self) -> datetime | None: ...

    @property
    def members_open_at(self) -> datetime | None: ...

    @property
    def promos_open_at(self) -> datetime | None: ...

    @property
    def priority_promos(self) -> Sequence[int] | None: ...

    @property
    def emails_open_at(self) -> datetime | None: ...

    @property
    def priority_emails(self) -> Sequence[str] | None: ...


class Student(Protocol):
    """What the rule reads of a student: the signed-in user, or a row read for a registration batch."""

    @property
    def promo(self) -> int | None: ...

    @property
    def email(self) -> str: ...

    @property
    def association_ids(self) -> Collection[int]: ...


MEMBERS, PROMO, LIST = "members", "promo", "list"


class Organised(Protocol):
    @property
    def association_id(self) -> int: ...


def is_member(event: Organised, student: Student | None) -> bool:
    """The student is a member (any role) of the association that organises the event."""
    return student is not None and event.association_id in student.association_ids


def has_priority_openings(event: Prioritised) -> bool:
    return event.registration_opens_at is not None and any(
        (event.members_open_at, event.promos_open_at, event.emails_open_at))


def groups_of(event: Prioritised, student: Student | None) -> list[tuple[str, datetime]]:
    """The priority groups of ``event`` that ``student`` belongs to, with each group's opening (earliest
    first): ``MEMBERS``, ``PROMO`` or ``LIST``."""
    if student is None or not has_priority_openings(event):
        return []
    groups = []
    if event.members_open_at is not None and is_member(event, student):
        groups.append((MEMBERS, event.members_open_at))
    if event.promos_open_at is not None and student.promo is not None and \
            student.promo in (event.priority_promos or ()):
        groups.append((PROMO, event.promos_open_at))
    if event.emails_open_at is not None and student.email in (event.priority_emails or ()):
        groups.append((LIST, event.emails_open_at))
    return sorted(groups, key=lambda group: group[1])


def opening_for(event: Prioritised, student: Student | None) -> datetime | None:
    """When registration opens for ``student`` (None for a visitor): the earliest opening of their priority
    groups when it comes before the event's own, else the event's own opening (None: open from publication)."""
    groups = groups_of(event, student)
    if groups and event.registration_opens_at is not None and groups[0][1] < event.registration_opens_at:
        return groups[0][1]
    return event.registration_opens_at
