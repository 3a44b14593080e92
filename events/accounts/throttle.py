"""Throttles of everything guessable or costly on request: log-in, the password-change form, sign-up and the
e-mails anyone can make us send (reset links, verification links, "someone used your address").

A key (scope, subject, client address) may make ``free`` attempts at once; after that each attempt waits a
delay that doubles, from ``first_delay`` up to ``max_delay``; a key left alone for ``forget_after`` starts
over. An attempt is counted *before* the work it guards (the password check), by one upsert that also checks
the limit: parallel attempts queue on the key's row, so thirty guesses sent at once still get ``free``
password checks, never more. What turns out not to be a failure (the right password) is forgiven afterwards.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils.translation import gettext_lazy as _
from sqlalchemy import and_, case, delete, literal, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from events.errors import DomainError
from events.models import Throttle, UTCDateTime, utcnow
from hyperion import db


class Throttled(DomainError):
    message = _("Too many attempts. Wait a few minutes and try again.")


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str
    free: int
    first_delay: timedelta
    max_delay: timedelta
    forget_after: timedelta

    def delay_after(self, attempts: int) -> timedelta:
        """How long the key waits after its ``attempts``-th attempt."""
        if attempts < self.free:
            return timedelta(0)
        return min(self.first_delay * 2 ** min(attempts - self.free, 32), self.max_delay)

    def doublings(self) -> int:
        """After how many delays past the free attempts the delay reaches its cap."""
        steps, delay = 0, self.first_delay
        while delay < self.max_delay:
            steps, delay = steps + 1, delay * 2
        return steps


DAY = timedelta(days=1)
# One account from one client address: the owner who mistypes, or someone guessing. The same account from
# another address is not slowed down by it, so a guesser cannot lock the owner out.
LOGIN = Limit("login", free=5, first_delay=timedelta(seconds=30), max_delay=timedelta(hours=1), forget_after=DAY)
# One account from anywhere (guessing spread over many addresses): far more room, the same growth.
LOGIN_ACCOUNT = Limit("login-account", free=50, first_delay=timedelta(minutes=1), max_delay=timedelta(hours=1),
                      forget_after=DAY)
# One client address across accounts. A whole school behind one NAT shares it: only failures count, generously.
LOGIN_ADDRESS = Limit("login-address", free=30, first_delay=timedelta(seconds=10), max_delay=timedelta(minutes=15),
                      forget_after=timedelta(hours=1))
# The password-change form tells whether a current password is right: the same oracle as log-in.
PASSWORD_CHANGE = Limit("password-change", free=5, first_delay=timedelta(seconds=30), max_delay=timedelta(hours=1),
                        forget_after=DAY)
SIGNUP = Limit("signup", free=10, first_delay=timedelta(minutes=1), max_delay=timedelta(hours=1), forget_after=DAY)
# E-mails anyone may trigger for an account (reset link, "someone signed up with your address", the
# verification link again), per account and client address: a few, then fewer, so nobody's mailbox can be
# flooded through us. Keyed by the client address too, so that whoever spends this budget from elsewhere
# does not keep the owner's reset link from the owner.
ACCOUNT_MAIL = Limit("account-mail", free=3, first_delay=timedelta(minutes=5), max_delay=DAY, forget_after=DAY)
# The same account from anywhere (spread over many addresses): more room, and delays that stay short, since
# the owner shares them.
ACCOUNT_MAIL_ACCOUNT = Limit("account-mail-account", free=10, first_delay=timedelta(minutes=1),
                             max_delay=timedelta(hours=1), forget_after=DAY)
ACCOUNT_MAIL_ADDRESS = Limit("account-mail-address", free=20, first_delay=timedelta(minutes=1),
                             max_delay=timedelta(hours=1), forget_after=DAY)


@dataclass(frozen=True, slots=True, order=True)
class Key:
    scope: str
    subject: str
    address: str
    limit: Limit = field(compare=False)  # keys sort (and lock their rows) by what they count

    @classmethod
    def of(cls, limit: Limit, *, subject: str | int = "", address: str = "") -> Key:
        return cls(limit.scope, str(subject)[:254], client_group(address)[:45], limit)


def client_group(address: str) -> str:
    """The client addresses one throttle counts as one: an IPv4 address as it is, an IPv6 address by its /64
    (one subscriber or host usually gets a whole /64, and could otherwise take a fresh address per guess).
    Anything else (no address known) is kept as given."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(parsed) >> 64 << 64, 64)))
    return str(parsed)


def login_keys(email: str, address: str) -> list[Key]:
    """The account's own keys first (a successful log-in forgets them), then the client address's."""
    return [Key.of(LOGIN, subject=email, address=address), Key.of(LOGIN_ACCOUNT, subject=email),
            Key.of(LOGIN_ADDRESS, address=address)]


def account_mail_keys(email: str, address: str) -> list[Key]:
    """An e-mail anyone may make us send to an account: per account and client, per account, per client."""
    return [Key.of(ACCOUNT_MAIL, subject=email, address=address), Key.of(ACCOUNT_MAIL_ACCOUNT, subject=email),
            Key.of(ACCOUNT_MAIL_ADDRESS, address=address)]


def _at(moment: datetime):
    return literal(moment, UTCDateTime())


async def attempt(session: AsyncSession, keys: list[Key], *, now: datetime | None = None) -> None:
    """Count one attempt against every key, or raise ``Throttled`` if any key must wait. Call it inside the
    caller's transaction: a refusal raises, so the transaction rolls back and no key counts the refused
    attempt. Keys are taken in one order, so two attempts never wait on each other's rows crosswise."""
    now = now or utcnow()
    for key in sorted(keys):
        limit = key.limit
        stale = Throttle.updated_at < _at(now - limit.forget_after)
        upcoming = Throttle.attempts + 1
        doublings: list[tuple[Any, Any]] = [
            (upcoming == limit.free + step, _at(now + limit.delay_after(limit.free + step)))
            for step in range(limit.doublings())]
        next_allowed = case(
            (stale, _at(now + limit.delay_after(1))),
            (upcoming < limit.free, _at(now)),
            *doublings,
            else_=_at(now + limit.max_delay))
        statement = db.insert_for(session)(Throttle).values(
            scope=key.scope, subject=key.subject, address=key.address, attempts=1,
            next_allowed_at=now + limit.delay_after(1), updated_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=[Throttle.scope, Throttle.subject, Throttle.address],
            set_={"attempts": case((stale, 1), else_=upcoming), "next_allowed_at": next_allowed, "updated_at": now},
            where=or_(stale, Throttle.attempts < limit.free, Throttle.next_allowed_at <= _at(now)),
        ).returning(Throttle.attempts)
        if (await session.execute(statement)).first() is None:
            raise Throttled


def _matching(keys: list[Key]):
    return or_(*[and_(Throttle.scope == key.scope, Throttle.subject == key.subject, Throttle.address == key.address)
                 for key in keys])


async def forget(session: AsyncSession, keys: list[Key]) -> None:
    """The attempts of these keys no longer count (the right password came)."""
    if keys:
        await session.execute(delete(Throttle).where(_matching(keys)))


async def refund(session: AsyncSession, keys: list[Key]) -> None:
    """One attempt of these keys was not a failure after all."""
    if keys:
        await session.execute(update(Throttle).where(_matching(keys), Throttle.attempts > 0)
                              .values(attempts=Throttle.attempts - 1))


async def forget_subject(session: AsyncSession, *, scopes: tuple[str, ...], subject: str) -> None:
    """Every key of this subject in these scopes, from whatever address (the owner proved who they are)."""
    await session.execute(delete(Throttle).where(Throttle.scope.in_(scopes), Throttle.subject == subject))


async def forget_old(session: AsyncSession, *, now: datetime | None = None) -> None:
    """Keys nobody touched for two days start over anyway: their rows can go."""
    await session.execute(delete(Throttle).where(Throttle.updated_at < (now or utcnow()) - 2 * DAY))
