"""What the account commands (createstaff, resetpassword) ask an operator for, checked as the site checks it:
the address's shape and normalisation, the password by Django's validators, each refusal one line."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from events.accounts.forms import MAX_PASSWORD_LENGTH, PasswordOwner
from events.ops import services as ops_services
from events.ops.services import AccountState
from events.rules.emails import normalize_email
from hyperion import db


class InvalidValue(ValueError):
    """A value typed or given is not acceptable; the message says why (one line)."""


async def account_by_email(email: str) -> AccountState | None:
    async with db.read_session() as session:
        return await ops_services.account_by_email(session, email=email)


def clean_email(value: str) -> str:
    email = normalize_email(value)
    if not email:
        raise InvalidValue("the e-mail address cannot be blank.")
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidValue(f"{value.strip()!r} is not a valid e-mail address.") from None
    return email


def check_password(password: str, *, email: str, display_name: str) -> None:
    if not password:
        raise InvalidValue("a blank password is not allowed.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidValue(f"the password may have at most {MAX_PASSWORD_LENGTH} characters.")
    try:
        password_validation.validate_password(password, PasswordOwner(email, display_name))
    except ValidationError as error:
        raise InvalidValue(" ".join(error.messages)) from None
