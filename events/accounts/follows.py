"""Students following associations: follow and stop following (the personal feed then changes: its owner's
``follows_changed_at``), how the followed associations' new events are e-mailed (at once, or a weekly digest),
and which associations a student follows. What is sent when an event is published is events/outbox.py's
``followers_notify``; the personal feed's followed events are events/feeds/queries.py's."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from events.errors import NotFound
from events.models import Association, Follow, User, utcnow
from hyperion import db

INSTANT, WEEKLY = "instant", "weekly"
FREQUENCIES = ((INSTANT, _("Each new event at once")), (WEEKLY, _("A weekly digest, on Monday")))

async def follow_set(session: AsyncSession, *, user_id: int, association_slug: str, following: bool) -> str:
    """Follow the association (again: nothing changes) or stop following it; returns its name."""
    async with session.begin():
        association = (await session.execute(select(Association.id, Association.name)
                                             .where(Association.slug == association_slug))).one_or_none()
        if association is None:
            raise NotFound
        if following:
            await session.execute(db.insert_for(session)(Follow).on_conflict_do_nothing().values(
                user_id=user_id, association_id=association.id, created_at=utcnow()))
        else:
            await session.execute(delete(Follow).where(Follow.user_id == user_id,
                                                       Follow.association_id == association.id))
        await session.execute(update(User).where(User.id == user_id).values(follows_changed_at=utcnow()))
    return str(association.name)


async def follow_emails_set(session: AsyncSession, *, user_id: int, frequency: str) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(
            follow_emails=frequency if frequency in (INSTANT, WEEKLY) else INSTANT))


async def followed_ids(session: db.Reader, *, user_id: int) -> set[int]:
    rows = await session.execute(select(Follow.association_id).where(Follow.user_id == user_id))
    return set(rows.scalars())
