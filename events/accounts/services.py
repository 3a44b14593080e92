"""Writes about accounts: sign-up, log-in, e-mail verification, passwords (change and reset), language, e-mail
preferences and feed addresses. Same habits as every service: each function owns its transaction and raises a
``DomainError``. Log-in, sign-up and the password forms are one call each, throttle included."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events import outbox
from events.accounts import auth, throttle, tokens
from events.accounts import queries as account_queries
from events.errors import DomainError
from events.models import (
    User,
    utcnow,
)
from events.rules.accounts import is_verified
from events.rules.emails import normalize_email
from hyperion.threadgate import GateFull


class EmailTaken(DomainError):
    message = _("An account already exists with this e-mail address.")


class LoginThrottled(throttle.Throttled):
    message = _("Too many failed log-in attempts. Wait a few minutes and try again, or reset your password.")


async def user_create(
    session: AsyncSession, *, email: str, display_name: str, password_hash: str, promo: int | None = None,
    is_staff: bool = False, language: str = "fr", verified: bool = False,
) -> int:
    """An account; ``verified`` for those an operator makes (the address needs no link)."""
    try:
        async with session.begin():
            return await _user_insert(session, email=email, display_name=display_name, password_hash=password_hash,
                                      promo=promo, is_staff=is_staff, language=language, verified=verified)
    except IntegrityError as exc:
        raise EmailTaken from exc


async def _user_insert(session: AsyncSession, *, email: str, display_name: str, password_hash: str,
                       promo: int | None, is_staff: bool, language: str, verified: bool) -> int:
    now = utcnow()
    return (await session.execute(insert(User).returning(User.id), {
        "email": normalize_email(email), "display_name": display_name.strip(),
        "password_hash": password_hash, "promo": promo, "is_staff": is_staff, "is_active": True,
        "language": language, "created_at": now, "email_verified_at": now if verified else None,
    })).scalar_one()



async def _unless_busy[T](session: AsyncSession, keys: list[throttle.Key], hashing: Awaitable[T]) -> T:
    """Await a password hash whose attempt ``keys`` already counted: if the site is too busy to hash it (the
    hashing line is full: a 429), the attempt was not the client's failure and no longer counts."""
    try:
        return await hashing
    except GateFull:
        async with session.begin():
            await throttle.refund(session, keys)
        raise

async def signup(session: AsyncSession, *, email: str, display_name: str, password: str, promo: int | None,
                 language: str, address: str) -> None:
    """A new account, unverified, and the link that verifies it. For an address that already has an account
    the caller sees exactly the same (same answer, and the password is hashed all the same, so it takes as
    long): the owner is told by e-mail instead, so sign-up never tells who has an account here."""
    keys = [throttle.Key.of(throttle.SIGNUP, address=address)]
    async with session.begin():
        await throttle.attempt(session, keys)
    password_hash = await _unless_busy(session, keys, auth.password_hash(password))
    email = normalize_email(email)
    try:
        async with session.begin():
            user_id = await _user_insert(session, email=email, display_name=display_name, password_hash=password_hash,
                                         promo=promo, is_staff=False, language=language, verified=False)
            await outbox.notify(session, kind="account.verify", recipient_ids=[user_id])
    except IntegrityError:
        await _account_mail(session, kind="account.signup_taken", email=email, address=address)


async def _account_mail(session: AsyncSession, *, kind: str, email: str, address: str) -> None:
    """An e-mail anyone may make us send to an existing account's address (nothing if there is none), within
    the mail throttle; silent either way, so the answer never depends on whether the account exists."""
    try:
        async with session.begin():
            await throttle.attempt(session, throttle.account_mail_keys(email, address))
            user_id = await account_queries.active_account_id(session, email=email)
            if user_id is not None:
                await outbox.notify(session, kind=kind, recipient_ids=[user_id])
    except throttle.Throttled:
        pass


class LoginRefused(DomainError):
    # One message whatever was wrong: the page never tells whether an account exists.
    message = _("E-mail or password incorrect.")


async def login(session: AsyncSession, *, email: str, password: str, address: str) -> str:
    """Check a log-in and open its session; returns the session token. The attempt is counted before the
    password is checked (throttle.attempt), so parallel guesses never get more checks than the limit; the
    right password forgives it."""
    email = normalize_email(email)
    keys = throttle.login_keys(email, address)
    try:
        async with session.begin():
            await throttle.attempt(session, keys)
    except throttle.Throttled as exc:
        raise LoginThrottled from exc
    async with session.begin():
        credentials = await account_queries.user_credentials(session, email=email)
    matches = await _unless_busy(session, keys, auth.password_matches(
        password, credentials.password_hash if credentials else None))
    if credentials is None or not matches or not credentials.is_active:
        raise LoginRefused
    async with session.begin():
        own, address_wide = keys[:2], keys[2:]  # this account's keys; the client address's, shared with others
        await throttle.forget(session, own)
        await throttle.refund(session, address_wide)
    return await auth.session_create(session, user_id=credentials.id)


class WrongCurrentPassword(DomainError):
    message = _("This is not your current password.")


async def password_confirm(session: AsyncSession, *, user_id: int, password: str) -> None:
    """The account's owner typed its current password (before changing it, or closing the account):
    ``WrongCurrentPassword`` otherwise. Throttled like log-in: it tells whether a password is right."""
    key = throttle.Key.of(throttle.PASSWORD_CHANGE, subject=user_id)
    async with session.begin():
        await throttle.attempt(session, [key])
        current_hash = (await session.execute(select(User.password_hash).where(User.id == user_id))).scalar_one()
    if not await _unless_busy(session, [key], auth.password_matches(password, current_hash)):
        raise WrongCurrentPassword


async def password_change(session: AsyncSession, *, user_id: int, current_password: str, new_password: str,
                          keep_token: str) -> None:
    """The password-change form: throttled like log-in (it tells whether a current password is right)."""
    key = throttle.Key.of(throttle.PASSWORD_CHANGE, subject=user_id)
    await password_confirm(session, user_id=user_id, password=current_password)
    # Still hashing: a 429 here must not count an attempt whose current password was right.
    new_hash = await _unless_busy(session, [key], auth.password_hash(new_password))
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(password_hash=new_hash))
        await throttle.forget(session, [key])
    # Every other browser logged in as this user is logged out.
    await auth.sessions_end_for_user(session, user_id=user_id, keep_token=keep_token)


class VerificationThrottled(throttle.Throttled):
    message = _("A link was sent a moment ago. Look in your mailbox (and its spam folder) before asking again.")


async def verification_resend(session: AsyncSession, *, user_id: int, email: str, address: str) -> None:
    try:
        async with session.begin():
            await throttle.attempt(session, throttle.account_mail_keys(email, address))
            await outbox.notify(session, kind="account.verify", recipient_ids=[user_id])
    except throttle.Throttled as exc:
        raise VerificationThrottled from exc


class InvalidLink(DomainError):
    message = _("This link is invalid, expired or already used. Ask for a new one.")


async def email_verify(session: AsyncSession, *, token: str) -> None:
    """Mark the address confirmed. The token is bound to the unconfirmed state: it works once."""
    user_id = tokens.account_id(token)
    if user_id is None:
        raise InvalidLink
    async with session.begin():
        state = await account_queries.account_state(session, user_id=user_id, for_update=True)
        if state is None or not tokens.valid(tokens.VERIFY, token, state):
            raise InvalidLink
        await session.execute(update(User).where(User.id == user_id).values(email_verified_at=utcnow()))


async def password_reset_request(session: AsyncSession, *, email: str, address: str) -> None:
    """Send a reset link if the address has an account; the caller answers the same either way."""
    await _account_mail(session, kind="account.reset", email=normalize_email(email), address=address)


async def reset_link_account(session: AsyncSession, *, token: str) -> tokens.AccountState:
    """The account a reset link opens (the new-password form shows only for a valid link)."""
    user_id = tokens.account_id(token)
    state = None if user_id is None else await account_queries.account_state(session, user_id=user_id)
    if state is None or not tokens.valid(tokens.RESET, token, state):
        raise InvalidLink
    return state


async def password_reset(session: AsyncSession, *, token: str, new_password: str) -> str:
    """A new password through the link sent by e-mail; returns the token of the session it opens. The link then
    stops working (it was bound to the old password), every other session of the account ends, the address
    counts as confirmed (its owner read the mail) and the account's log-in throttles are forgotten. The owner
    is logged in here and now, as Django's reset view does with post_reset_login: the log-in form's throttles
    (this account from anywhere, this client address across accounts) cannot keep out whoever proved they
    read the mailbox, so a locked-out owner always gets back in this way."""
    async with session.begin():
        await reset_link_account(session, token=token)
    new_hash = await auth.password_hash(new_password)
    user_id = tokens.account_id(token)
    if user_id is None:  # reset_link_account has refused such a token already
        raise InvalidLink
    async with session.begin():
        state = await account_queries.account_state(session, user_id=user_id, for_update=True)
        if state is None or not tokens.valid(tokens.RESET, token, state):  # the same link used twice at once
            raise InvalidLink
        await _password_replace(session, state, new_hash)
    await auth.sessions_end_for_user(session, user_id=user_id)
    return await auth.session_create(session, user_id=user_id)


async def _password_replace(session: AsyncSession, state: tokens.AccountState, password_hash: str) -> None:
    await session.execute(update(User).where(User.id == state.id).values(
        password_hash=password_hash, email_verified_at=func.coalesce(User.email_verified_at, utcnow())))
    await throttle.forget_subject(session, scopes=(throttle.LOGIN.scope, throttle.LOGIN_ACCOUNT.scope),
                                  subject=state.email)
    await throttle.forget_subject(session, scopes=(throttle.PASSWORD_CHANGE.scope,), subject=str(state.id))


class AccountNotFound(DomainError):
    message = _("No active account has this e-mail address.")


async def password_set_by_operator(session: AsyncSession, *, email: str, password_hash: str) -> None:
    """manage.py resetpassword: as a reset link would (sessions end, address confirmed, throttles forgotten)."""
    async with session.begin():
        user_id = await account_queries.active_account_id(session, email=normalize_email(email))
        state = None if user_id is None else await account_queries.account_state(
            session, user_id=user_id, for_update=True)
        if state is None:
            raise AccountNotFound
        await _password_replace(session, state, password_hash)
    await auth.sessions_end_for_user(session, user_id=state.id)


async def user_language_set(session: AsyncSession, *, user_id: int, language: str) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(language=language))


async def user_email_opt_outs_set(session: AsyncSession, *, user_id: int, opt_outs: list[str]) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(email_opt_outs=sorted(set(opt_outs))))


class EmailNotVerified(DomainError):
    message = _("Confirm your e-mail address first: open the link we sent you.")


@dataclass(frozen=True, slots=True)
class FeedAddress:
    token: str
    replaced: bool  # an earlier address existed, and no longer works


async def feed_token_regenerate(session: AsyncSession, *, user_id: int) -> FeedAddress:
    """A new secret for the personal calendar feed; the old URL, if any, stops working at once. Only its hash is
    stored: the caller shows ``token`` to its owner now or never. Only for a confirmed address."""
    token = secrets.token_urlsafe(24)
    async with session.begin():
        row = (await session.execute(
            select(User.feed_token_hash, User.email_verified_at).where(User.id == user_id))).one()
        if not is_verified(row.email_verified_at):
            raise EmailNotVerified
        previous = row.feed_token_hash
        await session.execute(update(User).where(User.id == user_id).values(
            feed_token_hash=auth.feed_token_hash(token)))
    return FeedAddress(token, replaced=previous is not None)


async def feed_token_revoke(session: AsyncSession, *, user_id: int) -> None:
    async with session.begin():
        await session.execute(update(User).where(User.id == user_id).values(feed_token_hash=None))
