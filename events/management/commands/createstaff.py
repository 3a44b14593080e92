"""``manage.py createstaff``: create a staff account (or promote an existing one), like createsuperuser."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, no_translations

from events.accounts.auth import password_hash
from events.accounts.services import EmailTaken
from events.errors import DomainError
from events.management.account_input import InvalidValue, account_by_email, check_password, clean_email
from events.management.base import run_step
from events.ops import services as ops_services
from events.ops.services import AccountState
from events.rules.text import plain_text
from hyperion import db

PASSWORD_ENV = "HYPERION_STAFF_PASSWORD"  # noqa: S105 - the variable's name, not a password  # nosec B105
DISPLAY_NAME_MAX = 80  # User.display_name

T = TypeVar("T")


class Command(BaseCommand):
    # Like createsuperuser, an operator task skips the system checks: they cost seconds a run, and
    # `manage.py check` is where they belong.
    requires_system_checks: list[str] = []
    help = (
        "Create an active staff account. Interactive by default (on a terminal: e-mail, display name, "
        "password twice, checked by the site's password validators). With --noinput, give --email and "
        f"--display-name, and the password in the {PASSWORD_ENV} environment variable. An e-mail that "
        "already has an account is an error, unless --promote: then that account is made active staff "
        "and keeps its password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", help="e-mail address of the account (asked if not given)")
        parser.add_argument("--display-name", help="name shown on the site (asked if not given)")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive",
                            help=f"ask nothing: use --email, --display-name and ${PASSWORD_ENV}")
        parser.add_argument("--promote", action="store_true",
                            help="if the e-mail already has an account, make that account staff")

    @no_translations
    def handle(self, *args, email, display_name, interactive, promote, **options):
        if interactive and not sys.stdin.isatty():
            raise CommandError(
                "createstaff asks for the password on a terminal, and standard input is not one: "
                f"use --noinput with --email, --display-name and the {PASSWORD_ENV} environment variable")
        try:
            if interactive:
                email, display_name, password = self._ask(email, display_name, promote=promote)
            else:
                email, display_name, password = self._from_options(email, display_name, promote=promote)
        except EOFError:
            raise CommandError("input ended before the account was complete: nothing created") from None
        except KeyboardInterrupt:
            self.stderr.write("\nOperation cancelled.")
            sys.exit(1)

        outcome = self._database(lambda: self._save(email, display_name, password, promote=promote))
        if outcome.created:
            self.stdout.write(self.style.SUCCESS(f"Staff account created for {email}."))
        elif outcome.changed:
            self.stdout.write(self.style.SUCCESS(f"{email} is staff now (existing account, password unchanged)."))
        else:
            self.stdout.write(f"{email} already is active staff: nothing to do.")

    # Non-interactive.

    def _from_options(self, email: str | None, display_name: str | None, *, promote: bool):
        if not email:
            raise CommandError("--email is required with --noinput")
        try:
            email = clean_email(email)
            if self._existing(email, promote=promote) is not None:
                return email, "", None
            if not display_name:
                raise CommandError("--display-name is required with --noinput for a new account")
            display_name = _clean_display_name(display_name)
            password = os.environ.get(PASSWORD_ENV, "")
            if not password:
                raise CommandError(f"set the {PASSWORD_ENV} environment variable to the new account's password "
                                   "(with --noinput)")
            check_password(password, email=email, display_name=display_name)
        except InvalidValue as exc:
            raise CommandError(str(exc)) from None
        return email, display_name, password

    # Interactive: each answer is checked at once and asked again while it is wrong.

    def _ask(self, email: str | None, display_name: str | None, *, promote: bool):
        if email:  # given on the command line: a wrong one is an error, not a question
            try:
                email = clean_email(email)
                account = self._existing(email, promote=promote)
            except InvalidValue as exc:
                raise CommandError(str(exc)) from None
        else:
            email, account = self._ask_until_valid("E-mail address: ", lambda answer: self._email_answer(
                answer, promote=promote))
        if account is not None:
            self.stdout.write(f"{email} already has an account: it will be made staff.")
            return email, "", None
        if display_name:
            try:
                display_name = _clean_display_name(display_name)
            except InvalidValue as exc:
                raise CommandError(str(exc)) from None
        else:
            display_name = self._ask_until_valid("Display name: ", _clean_display_name)
        while True:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Password (again): ")
            try:
                if password != again:
                    raise InvalidValue("the two passwords differ.")
                check_password(password, email=email, display_name=display_name)
            except InvalidValue as exc:
                self.stderr.write(f"Error: {exc}")
                continue
            return email, display_name, password

    def _ask_until_valid(self, prompt: str, clean: Callable[[str], T]) -> T:
        while True:
            try:
                return clean(input(prompt))
            except InvalidValue as exc:
                self.stderr.write(f"Error: {exc}")

    def _email_answer(self, answer: str, *, promote: bool) -> tuple[str, AccountState | None]:
        email = clean_email(answer)
        return email, self._existing(email, promote=promote)

    # The database.

    def _existing(self, email: str, *, promote: bool) -> AccountState | None:
        """The account of ``email`` if it may be promoted; None if there is none yet."""
        account = self._database(lambda: account_by_email(email))
        if account is None:
            return None
        if account.anonymised:
            raise InvalidValue(f"{email} belongs to an anonymised account, which cannot be used again.")
        if not promote:
            raise InvalidValue(f"an account already exists with the e-mail {email} (add --promote to make it "
                               "staff).")
        return account

    async def _save(self, email: str, display_name: str, password: str | None, *, promote: bool):
        hashed = await password_hash(password) if password else None
        async with db.write_session() as session:
            try:
                return await ops_services.staff_create(session, email=email, display_name=display_name,
                                                       password_hash=hashed, promote=promote)
            except EmailTaken:
                raise CommandError(f"an account already exists with the e-mail {email} (add --promote to make "
                                   "it staff).") from None
            except DomainError as exc:
                raise CommandError(str(exc.message)) from None

    def _database(self, work: Callable[[], Awaitable[T]]) -> T:
        return run_step(work)


def _clean_display_name(value: str) -> str:
    name = " ".join(value.split())
    if len(name) < 2:
        raise InvalidValue("the display name needs at least 2 characters.")
    if len(name) > DISPLAY_NAME_MAX:
        raise InvalidValue(f"the display name may have at most {DISPLAY_NAME_MAX} characters.")
    try:  # the rule every form applies to names: no control, bidirectional or other invisible character
        plain_text()(name)
    except ValidationError as error:
        raise InvalidValue("the display name contains invisible control characters (such as right-to-left "
                           "marks): remove them.") from error
    return name
