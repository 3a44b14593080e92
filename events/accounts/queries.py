"""Reads about accounts: credentials for log-in, the account page, a user's roles."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.accounts.tokens import AccountState
from events.models import (
    Membership,
    Role,
    User,
)
from events.rules.accounts import verified
from events.rules.emails import normalize_email
from hyperion import db

# A role granted to an address nobody has confirmed yet takes effect once it is confirmed.
_USER_ROLES = (select(Membership.association_id, Membership.role)
               .join(User, User.id == Membership.user_id)
               .where(Membership.user_id == bindparam("user_id"), verified()))


async def user_roles(session: db.Reader, *, user_id: int) -> dict[int, Role]:
    """association_id → the user's role there (none while the address is unconfirmed)."""
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
    is_verified: bool
    follow_emails: str = "instant"  # the followed associations' new events: at once, or weekly


async def user_account(session: AsyncSession, *, user_id: int) -> Account | None:
    row = (await session.execute(
        select(User.id, User.email, User.display_name, User.promo, User.language,
               User.feed_token_hash.is_not(None), User.password_hash, User.email_opt_outs,
               verified(), User.follow_emails)
        .where(User.id == user_id))).first()
    return None if row is None else Account(*row[:9], follow_emails=row.follow_emails)


_ACCOUNT_STATE = (User.id, User.email, User.email_verified_at, User.password_hash, User.last_login_at,
                  User.display_name)


async def account_state(session: AsyncSession, *, user_id: int, for_update: bool = False,
                        active_only: bool = True) -> AccountState | None:
    """What the links sent by e-mail are bound to (events.accounts.tokens). ``for_update``: inside a write
    transaction, so that a link is used once even by two clicks at the same moment."""
    statement = select(*_ACCOUNT_STATE).where(User.id == user_id)
    if active_only:
        statement = statement.where(User.is_active.is_(True), User.anonymised_at.is_(None))
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).first()
    return None if row is None else AccountState(*row)


async def active_account_id(session: AsyncSession, *, email: str) -> int | None:
    return (await session.execute(select(User.id).where(
        User.email == email, User.is_active.is_(True), User.anonymised_at.is_(None)))).scalar_one_or_none()
