"""E-mail addresses: the one normalisation (sign-up, log-in, staff commands, imports and role grants compare
the same spelling)."""

from __future__ import annotations


def normalize_email(email: str) -> str:
    return email.strip().lower()
