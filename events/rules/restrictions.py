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

from collections.abc import Sequence
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


def may_see(event: Restricted, viewer: Student | None, *, is_staff: bool = False) -> bool:
    """Whether ``viewer`` may see ``event``'s page: anyone, unless it is a members' event hidden from others."""
    if not event.hidden_from_others:
        return True
    return is_staff or is_member(event, viewer)


def label(event: Restricted, association_name: str) -> str:
    """Who may register, as the event page says it ("" for everyone)."""
    kind = event.restricted_to
    if kind == MEMBERS:
        return str(_("Open to the members of %(association)s only.") % {"association": association_name})
    if kind == PROMOS:
        promos: Sequence[int] = event.restricted_promos or ()
        return str(ngettext("Open to promo %(promos)s only.", "Open to promos %(promos)s only.", len(promos)) % {
            "promos": ", ".join(str(promo) for promo in promos)})
    if kind == INVITED:
        return str(_("By invitation only: open to the students on the organisers' list."))
    return ""
