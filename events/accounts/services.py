"""Writes about accounts: sign-up, passwords, language, e-mail preferences, feed addresses and the log-in
throttle. Same habits as every service: each function owns its transaction and raises a ``DomainError``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.utils.translation import gettext_lazy as _
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events.accounts import auth
from events.errors import DomainError
from events.models import (
    LoginFailure,
    User,
    utcnow,
)
from events.rules.emails import normalize_email


class EmailTaken(DomainError):
    message = _("An account already exists with this e-mail address.")


class LoginThrottled(DomainError):
    message = _("Too many failed log-in attempts. Wait a few minutes and try again.")


async def user_create(
    session: AsyncSession, *, email: str, display_name: str, password_hash: str, promo: int | None = None,
    is_staff: bool = False, language: str = "fr",
) -> int:
    try:
        async with session.begin():
            return (await session.execute(insert(User).returning(User.id), {
                "email": normalize_email(email), "display_name": display_name.strip(),
                "password_hash": password_hash, "promo": promo, "is_staff": is_staff, "is_active": True,
                "language": language, "created_at": utcnow(),
            })).scalar_one()
    except IntegrityError as exc:
        raise EmailTaken from exc


async def user_password_set(session: AsyncSession, *, user_id: int, password_hash: str) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


async def user_language_set(session: AsyncSession, *, user_id: int, language: str) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(language=language))


async def user_email_opt_outs_set(session: AsyncSession, *, user_id: int, opt_outs: list[str]) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(email_opt_outs=sorted(set(opt_outs))))


@dataclass(frozen=True, slots=True)
class FeedAddress:
    token: str
    replaced: bool  # an earlier address existed, and no longer works


async def feed_token_regenerate(session: AsyncSession, *, user_id: int) -> FeedAddress:
    """A new secret for the personal calendar feed; the old URL, if any, stops working at once. Only its hash is
    stored: the caller shows ``token`` to its owner now or never."""
    token = secrets.token_urlsafe(24)
    async with session.begin():
        previous = (await session.execute(
            select(User.feed_token_hash).where(User.id == user_id))).scalar_one_or_none()
        await session.execute(update(User).where(User.id == user_id).values(
            feed_token_hash=auth.feed_token_hash(token)))
    return FeedAddress(token, replaced=previous is not None)


async def feed_token_revoke(session: AsyncSession, *, user_id: int) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(feed_token_hash=None))


LOGIN_WINDOW = timedelta(minutes=15)


LOGIN_MAX_FAILURES_PER_ACCOUNT = 5


LOGIN_MAX_FAILURES_PER_ADDRESS = 20


async def login_throttle_check(session: AsyncSession, *, email: str, address: str) -> None:
    """Refuse a log-in attempt while this account or this address has failed too often recently.

    The window slides: the real owner can log in again a few minutes later (never locked out for ever).
    """
    since = utcnow() - LOGIN_WINDOW
    async with session.begin():
        by_account = (await session.execute(select(func.count(LoginFailure.id)).where(
            LoginFailure.email == normalize_email(email), LoginFailure.created_at > since))).scalar_one()
        by_address = (await session.execute(select(func.count(LoginFailure.id)).where(
            LoginFailure.address == address, LoginFailure.created_at > since))).scalar_one()
    if by_account >= LOGIN_MAX_FAILURES_PER_ACCOUNT or by_address >= LOGIN_MAX_FAILURES_PER_ADDRESS:
        raise LoginThrottled


async def login_failure_record(session: AsyncSession, *, email: str, address: str) -> None:
    """Its own short transaction: the refusal must not roll it back."""
    now = utcnow()
    async with session.begin():
        await session.execute(insert(LoginFailure), {
            "email": normalize_email(email)[:254], "address": address[:45], "created_at": now})
        await session.execute(delete(LoginFailure).where(LoginFailure.created_at < now - LOGIN_WINDOW * 4))


async def login_failures_clear(session: AsyncSession, *, email: str) -> None:
    async with session.begin():
        await session.execute(delete(LoginFailure).where(LoginFailure.email == normalize_email(email)))
