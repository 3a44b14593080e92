"""The links sent by e-mail: confirm an address, reset a password. Signed, expiring and single use, without
storing anything (Django's PasswordResetTokenGenerator pattern, on ``signing.TimestampSigner``).

A token is ``<account id>:<timestamp>:<signature>``. The signature is salted with the account's current state
for its purpose (the address and whether it is verified; the password hash and the last log-in): using the
link changes that state, so the same link no longer verifies. Nothing secret is in the outbox either: the
sender makes the link when it builds the e-mail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core import signing
from django.utils.encoding import force_str

VERIFY = "verify"
RESET = "reset"
MAX_AGE = {VERIFY: timedelta(days=3), RESET: timedelta(hours=2)}


@dataclass(frozen=True, slots=True)
class AccountState:
    """What a token of each purpose is bound to."""

    id: int
    email: str
    email_verified_at: datetime | None
    password_hash: str
    last_login_at: datetime | None
    display_name: str = ""  # not bound: what a new password must not resemble (Django's validators)

    def for_purpose(self, purpose: str) -> str:
        if purpose == VERIFY:
            return f"{self.email}|{self.email_verified_at.isoformat() if self.email_verified_at else ''}"
        return f"{self.email}|{self.password_hash}|{self.last_login_at.isoformat() if self.last_login_at else ''}"


class _Signer(signing.TimestampSigner):
    def __init__(self, purpose: str, state: AccountState, now: float | None = None) -> None:
        super().__init__(salt=f"hyperion.accounts.{purpose}:{state.for_purpose(purpose)}")
        self._now = now

    def timestamp(self) -> str:
        return signing.b62_encode(int(self._now if self._now is not None else time.time()))


def make(purpose: str, state: AccountState, *, now: float | None = None) -> str:
    """``now`` (a Unix time) dates the token: tests make old ones without waiting."""
    return _Signer(purpose, state, now).sign(str(state.id))


def account_id(token: str) -> int | None:
    """The account a token claims (not yet checked: ``valid`` does that against the account's state)."""
    head = token.split(":", 1)[0]
    return int(head) if head.isascii() and head.isdigit() and len(head) <= 10 else None


def valid(purpose: str, token: str, state: AccountState) -> bool:
    try:
        value = _Signer(purpose, state).unsign(token, max_age=MAX_AGE[purpose])
    except signing.BadSignature:  # SignatureExpired included
        return False
    return force_str(value) == str(state.id)
