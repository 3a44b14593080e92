"""Who may see and do what, by object. Every view and service asks here; nothing is decided in templates.

Forbidden objects of another association answer 404 rather than 403, so their existence never leaks
(pretix's habit); a known object the user may see but not change answers 403.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from events.models import EventStatus, Role
from events.rules.visibility import goes_ahead, is_published


class Viewer(Protocol):
    """Whoever asks to see a page: a logged-in user or the anonymous one (events.accounts.auth)."""

    @property
    def is_authenticated(self) -> bool: ...

    @property
    def is_staff(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """A logged-in user with their association roles."""

    id: int
    is_staff: bool
    roles: dict[int, Role] = field(default_factory=dict)

    def role_in(self, association_id: int) -> Role | None:
        return self.roles.get(association_id)

    def is_editor_of(self, association_id: int) -> bool:
        return self.is_staff or self.roles.get(association_id) in (Role.EDITOR, Role.MANAGER)

    def is_manager_of(self, association_id: int) -> bool:
        return self.is_staff or self.roles.get(association_id) == Role.MANAGER

    @property
    def runs_something(self) -> bool:
        """Staff, or editor/manager somewhere: may enter the management area."""
        return self.is_staff or any(role in (Role.EDITOR, Role.MANAGER) for role in self.roles.values())

    def editable_association_ids(self) -> set[int]:
        return {aid for aid, role in self.roles.items() if role in (Role.EDITOR, Role.MANAGER)}


def can_see_unpublished(user: Viewer, *, association_id: int, roles: dict[int, Role]) -> bool:
    """Drafts, submitted and declined events: staff and the association's editors and managers only."""
    if not user.is_authenticated:
        return False
    return user.is_staff or roles.get(association_id) in (Role.EDITOR, Role.MANAGER)


def can_see_event_admin(actor: Actor, *, association_id: int) -> bool:
    """The event's management pages, attendees and CSV included."""
    return actor.is_editor_of(association_id)


def can_edit_all_fields(actor: Actor, *, association_id: int, status: EventStatus) -> bool:
    """Drafts and declined events: editors rewrite them. Staff may fix anything not yet published."""
    if actor.is_staff:
        return not is_published(status)
    return actor.is_editor_of(association_id) and status in (EventStatus.DRAFT, EventStatus.DECLINED)


def can_edit_published(actor: Actor, *, association_id: int, status: EventStatus) -> bool:
    """Date, place and capacity of a published event: managers and staff."""
    return goes_ahead(status) and actor.is_manager_of(association_id)


def can_edit_questions(actor: Actor, *, association_id: int, status: EventStatus) -> bool:
    """An event's registration questions and their deadline: whoever may edit the event now."""
    return can_edit_all_fields(actor, association_id=association_id, status=status) or can_edit_published(
        actor, association_id=association_id, status=status)


def can_change_poster(actor: Actor, *, association_id: int, status: EventStatus) -> bool:
    """An event's poster and its text alternative: whoever may edit the event now."""
    return can_edit_questions(actor, association_id=association_id, status=status)


def can_change_logo(actor: Actor, *, association_id: int) -> bool:
    """An association's logo: whoever may edit the association (its managers, staff)."""
    return actor.is_manager_of(association_id)


def can_submit(actor: Actor, *, association_id: int) -> bool:
    return actor.is_editor_of(association_id)


def can_review(actor: Actor) -> bool:
    """Approve or decline: staff only."""
    return actor.is_staff


def can_cancel(actor: Actor, *, association_id: int) -> bool:
    return actor.is_manager_of(association_id)


def can_delete(actor: Actor, *, association_id: int, status: EventStatus) -> bool:
    """Unpublished events only: a published one is cancelled, never deleted (students hold places)."""
    return not is_published(status) and actor.is_editor_of(association_id)


def can_change_attendees(actor: Actor, *, association_id: int) -> bool:
    """Manual add and remove: managers and staff."""
    return actor.is_manager_of(association_id)


def can_message_attendees(actor: Actor, *, association_id: int) -> bool:
    """E-mail an event's registrants: whoever may change its attendees (managers and staff)."""
    return can_change_attendees(actor, association_id=association_id)


def can_see_statistics(actor: Actor, *, association_id: int) -> bool:
    """An event's statistics (registrations over time, fill rate, no-shows): its association's managers and
    staff."""
    return actor.is_manager_of(association_id)


def can_check_in(actor: Actor, *, association_id: int) -> bool:
    """At the door: any editor of the association, managers, staff."""
    return actor.is_editor_of(association_id)


def can_manage_members(actor: Actor, *, association_id: int) -> bool:
    return actor.is_manager_of(association_id)
