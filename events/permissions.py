"""Who may see and do what. Every view asks here; nothing is decided in templates."""

from __future__ import annotations

from events.models import Role


def can_see_unpublished(user, *, association_id: int, roles: dict[int, Role]) -> bool:
    """Drafts, submitted and declined events: staff and the association's editors and managers only."""
    if not user.is_authenticated:
        return False
    return user.is_staff or roles.get(association_id) in (Role.EDITOR, Role.MANAGER)
