"""Reads about accounts: credentials for log-in, the account page, a user's roles."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.models import (
    Membership,
    Role,
    User,
)
from events.rules.emails import normalize_email
from hyperion import db

_USER_ROLES = select(Membership.association_id, Membership.role).where(Membership.user_id == bindparam("user_id"))


async def user_roles(session: db.Reader, *, user_id: int) -> dict[int, Role]:
    """association_id → the user's role there."""
    rows = await session.execute(_USER_ROLES, {"user_id": user_id})
    return {row.association_id: row.role for row in rows}


@dataclass(frozen=True, slots=True)
class Credentials:
    id: int
    password_hash: str
    is_active: bool


async def user_credentials(session: AsyncSession, *, email: str) -> Credentials | None:
    row = (await session.execute(
        select(User.id, User.password_hash, User.is_active).where(User.email == normalize_email(email))
    )).first()
    return None if row is None else Credentials(row.id, row.password_hash, row.is_active)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str
    display_name: str
    promo: int | None
    language: str
    has_feed: bool  # a feed address exists (only its hash is stored: the address itself cannot be shown again)
    password_hash: str
    email_opt_outs: list[str]


async def user_account(session: AsyncSession, *, user_id: int) -> Account | None:
    row = (await session.execute(
        select(User.id, User.email, User.display_name, User.promo, User.language,
               User.feed_token_hash.is_not(None), User.password_hash, User.email_opt_outs)
        .where(User.id == user_id))).first()
    return None if row is None else Account(*row)
