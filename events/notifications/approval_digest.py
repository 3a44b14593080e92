"""The staff's daily digest of the approval queue: one e-mail per staff member on a day when events wait for
review, queued in the outbox like every other message (events/outbox.py sends it)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.localtime import site_zone
from events.models import Event, OutboxMessage, OutboxStatus, User, utcnow
from events.rules import lifecycle


async def staff_ids(session: AsyncSession) -> list[int]:
    rows = await session.execute(select(User.id).where(User.is_staff.is_(True), User.is_active.is_(True)))
    return list(rows.scalars())


async def digest_enqueue_due(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Once a day (from settings.DIGEST_HOUR, Paris time), one digest per staff member when events wait
    in the approval queue. A dedupe key per day and person: several senders never send it twice."""
    now = now or utcnow()
    local = now.astimezone(site_zone())
    if local.hour < settings.DIGEST_HOUR:
        return 0
    async with session.begin():
        waiting = (await session.execute(select(Event.id).where(lifecycle.awaiting_review())
                                         .limit(1))).first()
        if waiting is None:
            return 0
        day = local.date().isoformat()
        recipients = await staff_ids(session)
        keys = [f"digest:{day}:{user_id}" for user_id in recipients]
        existing = set((await session.execute(select(OutboxMessage.dedupe_key)
                                              .where(OutboxMessage.dedupe_key.in_(keys)))).scalars())
        fresh = [(user_id, key) for user_id, key in zip(recipients, keys, strict=True) if key not in existing]
        if fresh:
            await session.execute(insert(OutboxMessage), [
                {"kind": "digest.approval_queue", "recipient_id": user_id, "payload": {}, "dedupe_key": key,
                 "status": OutboxStatus.PENDING, "send_after": now, "attempts": 0, "last_error": "",
                 "created_at": now} for user_id, key in fresh])
    return len(fresh)
