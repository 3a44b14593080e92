"""Whether an account's address is verified: the one owner of "the owner opened the link sent to the address".

Until then an account may log in and browse, but registers for nothing, holds no feed, and its roles and
staff status count for nothing (a role granted by e-mail to an address someone else signed up with gives
them nothing). A reset link opened, an operator's account, and every account older than the rule count as
verified.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy.orm import QueryableAttribute

from events.models import User


def is_verified(email_verified_at: datetime | None) -> bool:
    return email_verified_at is not None


def verified(verified_at_column: QueryableAttribute[datetime | None] = User.email_verified_at) -> ColumnElement[bool]:
    """SQL: the account's address is verified."""
    return verified_at_column.is_not(None)
