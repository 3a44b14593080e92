"""Restricted events: the one rule for "may this student register for this event at all" and "may this person
see an event its organisers keep to their members".

An event is open to everyone (the default), to the organising association's members (any role), to some promo
years (the promo students gave at sign-up), or to the addresses on an invitation list. Others still see the
event and read why they cannot register, unless the editors chose to hide a members' event from everyone else:
then it is on no list, calendar or feed (``visibility.listed``) and its page is a 404 for anyone but the
association's members and the staff (``may_see``). Organisers may still add anyone by hand.

The event page (its button and its wording) and the registration service ask the same function, ``admits``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from events.rules.priority import Student, is_member

EVERYONE, MEMBERS, PROMOS, INVITED = "everyone", "members", "promos", "invited"
KINDS = (EVERYONE, MEMBERS, PROMOS, INVITED)
# The event's fields that say who may register.
FIELDS = ("restricted_to", "restricted_promos", "restricted_emails")


class Restricted(Protocol):
    """What the rule reads of an event (read-only, so that frozen rows qualify)."""

    @property
    def association_id(self) -> int: ...

    @property
    def restricted_to(self) -> str: ...

    @property
    def restricted_promos(self) -> Sequence[int] | None: ...

    @property
    def restricted_emails(self) -> Sequence[str] | None: ...

    @property
    def hidden_from_others(self) -> bool: ...


class Hideable(Protocol):
    """What ``may_see`` reads of an event (a calendar file's row qualifies too)."""

    @property
    def association_id(self) -> int: ...

    @property
    def hidden_from_others(self) -> bool: ...


def open_to_everyone(event: Restricted) -> bool:
    return event.restricted_to == EVERYONE


def admits(event: Restricted, student: Student | None) -> bool:
    """Whether ``student`` may register for ``event`` (None: nobody is logged in, so only an open event)."""
    if open_to_everyone(event):
        return True
    kind = event.restricted_to
    if student is None:
        return False
    if kind == MEMBERS:
        return is_member(event, student)
    if kind == PROMOS:
        return student.promo is not None and student.promo in (event.restricted_promos or ())
    return student.email in (event.restricted_emails or ())


def may_be_hidden(event: Restricted) -> bool:
    """Only an event open to the members may be hidden from everyone else (the form says so; a published
    members' event opened wider shows to all again)."""
    return event.restricted_to == MEMBERS


def may_see(event: Hideable, viewer: Student | None, *, is_staff: bool = False) -> bool:
    """Whether ``viewer`` may see ``event``'s page: anyone, unless it is a members' event hidden from others."""
    if not event.hidden_from_others:
        return True
    return is_staff or is_member(event, viewer)


class Kinded(Protocol):
    """What ``badge`` reads of an event (a list's row qualifies)."""

    @property
    def restricted_to(self) -> str: ...

    @property
    def restricted_promos(self) -> Sequence[int] | None: ...


def badge(event: Kinded) -> str:
    """Who may register, in two or three words for the lists, the cards and the event's title ("" for everyone):
    the same for every viewer, so shared pages may carry it."""
    return _worded(event, members=lambda: _("Members only"),
                   promos=lambda count: ngettext("Promo %(promos)s only", "Promos %(promos)s only", count),
                   invited=lambda: _("Invitation only"))


def label(event: Restricted, association_name: str) -> str:
    """Who may register, as the event page says it ("" for everyone)."""
    return _worded(
        event, members=lambda: _("Open to the members of %(association)s only.") % {"association": association_name},
        promos=lambda count: ngettext("Open to promo %(promos)s only.", "Open to promos %(promos)s only.", count),
        invited=lambda: _("By invitation only: open to the students on the organisers' list."))


def _worded(event: Kinded, *, members: Callable[[], str], promos: Callable[[int], str],
            invited: Callable[[], str]) -> str:
    """The wording of the event's kind of restriction (``promos``: the text for that many years, to fill)."""
    kind = event.restricted_to
    if kind == MEMBERS:
        return str(members())
    if kind == PROMOS:
        years: Sequence[int] = event.restricted_promos or ()
        return str(promos(len(years)) % {"promos": ", ".join(str(year) for year in years)})
    if kind == INVITED:
        return str(invited())
    return ""
