"""Writes of an event's poster and an association's logo: the key of an image already stored
(hyperion/images.py: the view stores it first, off the event loop, and removes it again when the write is
refused) and its text alternative.

Same habits as the other management services: the transaction is the service's, the permission is checked
inside it (the event's or the association's row locked), the audit entry is written in it, and the pages that
show the image are told at commit (the page store drops them, in every process).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from sqlalchemy.ext.asyncio import AsyncSession

from events.audit import audit_log, diff
from events.errors import DomainError, EventNotFound, NotFound
from events.live import broadcast
from events.models import Association, Event, utcnow
from events.rules import permissions
from events.rules.permissions import Actor
from hyperion.images import ImageRef


class NoImage(DomainError):
    message = _("There is no image to describe: choose one to upload.")


class ChangeNotAllowed(DomainError):
    message = _("You may not change this image now.")


@dataclass(frozen=True, slots=True)
class ImageChoice:
    """What the form asked: a new image (``image``), the one there is (neither), or none (``remove``)."""

    alt: str
    image: ImageRef | None = None
    remove: bool = False


def _apply(current: str | None, current_alt: str, choice: ImageChoice) -> tuple[str | None, str]:
    if choice.remove:
        return None, ""
    key = choice.image.key if choice.image is not None else current
    if key is None:
        raise NoImage
    return key, choice.alt.strip()


async def event_poster_set(session: AsyncSession, *, actor: Actor, event_id: int, choice: ImageChoice) -> bool:
    """Set, describe or remove an event's poster; whether anything changed."""
    async with session.begin():
        event = await session.get(Event, event_id, with_for_update=True)
        if event is None or not permissions.can_see_event_admin(actor, association_id=event.association_id):
            raise EventNotFound
        if not permissions.can_change_poster(actor, association_id=event.association_id, status=event.status):
            raise ChangeNotAllowed
        poster, alt = _apply(event.poster, event.poster_alt, choice)
        changes = diff({"poster": event.poster, "poster_alt": event.poster_alt}, {"poster": poster, "poster_alt": alt})
        if not changes:
            return False
        event.poster, event.poster_alt, event.updated_at = poster, alt, utcnow()
        await session.flush()
        await broadcast.seats_changed(session, event_id=event.id)  # its page and the lists show it
        await audit_log(session, actor_id=actor.id, action="event.poster_changed", object_type="event",
                        object_id=event.id, association_id=event.association_id, changes=changes)
    return True


async def association_logo_set(session: AsyncSession, *, actor: Actor, association_id: int,
                               choice: ImageChoice) -> bool:
    """Set, describe or remove an association's logo; whether anything changed."""
    async with session.begin():
        association = await session.get(Association, association_id, with_for_update=True)
        if association is None or not permissions.can_change_logo(actor, association_id=association_id):
            raise NotFound
        logo, alt = _apply(association.logo, association.logo_alt, choice)
        changes = diff({"logo": association.logo, "logo_alt": association.logo_alt}, {"logo": logo, "logo_alt": alt})
        if not changes:
            return False
        association.logo, association.logo_alt = logo, alt
        await session.flush()
        # Shown in the directory, on its page, and on its events without a poster: everything public.
        await broadcast.seats_changed(session, event_id=0)
        await audit_log(session, actor_id=actor.id, action="association.logo_changed", object_type="association",
                        object_id=association_id, association_id=association_id, changes=changes)
    return True
