"""A student's own data, as the site holds it, for them to download (the GDPR's right of access and
portability): their account, their memberships, their registrations, and the messages the site sent or
will send them. Secrets are not data about them and are left out: the password's hash, the feed's token
hash, the session tokens (the export says whether a feed is set).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from events.models import Association, Event, Follow, Membership, OutboxMessage, Registration, RegistrationAnswers, User
from events.rules.accounts import is_verified
from events.rules.questions import questions_of
from hyperion import db


async def personal_data(session: db.Reader, *, user_id: int) -> dict[str, Any]:
    """Everything the site holds about ``user_id``, as JSON-ready values (datetimes stay datetimes: the
    caller's encoder writes them in ISO 8601)."""
    user = (await session.execute(
        select(User.email, User.display_name, User.promo, User.language, User.created_at, User.last_login_at,
               User.email_verified_at, User.email_opt_outs, User.feed_token_hash.is_not(None).label("has_feed"))
        .where(User.id == user_id))).one()
    memberships = await session.execute(
        select(Association.name, Association.slug, Membership.role, Membership.created_at)
        .join(Association, Association.id == Membership.association_id)
        .where(Membership.user_id == user_id).order_by(Association.name))
    registrations = await session.execute(
        select(Event.title, Event.slug, Event.starts_at, Event.ends_at, Event.location, Registration.status,
               Registration.queued_at, Registration.checked_in_at, Registration.offer_expires_at,
               Registration.created_at, Registration.updated_at)
        .join(Event, Event.id == Registration.event_id)
        .where(Registration.user_id == user_id).order_by(Event.starts_at, Event.id))
    followed = await session.execute(
        select(Association.name, Association.slug, Follow.created_at)
        .join(Follow, Follow.association_id == Association.id)
        .where(Follow.user_id == user_id).order_by(Association.name))
    answers = await session.execute(
        select(Event.title, Event.slug, Event.questions, RegistrationAnswers.answers, RegistrationAnswers.updated_at)
        .join(Event, Event.id == RegistrationAnswers.event_id)
        .where(RegistrationAnswers.user_id == user_id).order_by(Event.starts_at, Event.id))
    messages = await session.execute(
        select(OutboxMessage.kind, OutboxMessage.status, OutboxMessage.created_at, OutboxMessage.send_after,
               Event.title)
        .outerjoin(Event, Event.id == OutboxMessage.event_id)
        .where(OutboxMessage.recipient_id == user_id).order_by(OutboxMessage.created_at, OutboxMessage.id))
    return {
        "account": {
            "email": user.email, "display_name": user.display_name, "promo": user.promo, "language": user.language,
            "created_at": user.created_at, "last_login_at": user.last_login_at,
            "email_verified": is_verified(user.email_verified_at), "email_opt_outs": list(user.email_opt_outs or []),
            "calendar_feed_enabled": bool(user.has_feed),
        },
        "memberships": [{"association": row.name, "association_slug": row.slug, "role": row.role.value,
                         "since": row.created_at} for row in memberships],
        "registrations": [{"event": row.title, "event_slug": row.slug, "starts_at": row.starts_at,
                           "ends_at": row.ends_at, "location": row.location, "status": row.status.value,
                           "queued_at": row.queued_at, "checked_in_at": row.checked_in_at,
                           "offer_expires_at": row.offer_expires_at, "created_at": row.created_at,
                           "updated_at": row.updated_at} for row in registrations],
        "follows": [{"association": row.name, "association_slug": row.slug, "since": row.created_at}
                    for row in followed],
        "answers": [{"event": row.title, "event_slug": row.slug, "updated_at": row.updated_at,
                     "answers": {question.label: question.shown(row.answers.get(question.id))
                                 for question in questions_of(row) if question.id in (row.answers or {})}}
                    for row in answers],
        "messages": [{"kind": row.kind, "status": row.status.value, "event": row.title,
                      "created_at": row.created_at, "send_after": row.send_after} for row in messages],
    }
