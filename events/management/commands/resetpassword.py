"""``manage.py resetpassword EMAIL``: set an account's password, like Django's changepassword.

What a reset link does, done by an operator: the account's sessions end, its address counts as confirmed and its
log-in throttles are forgotten (the owner asked the operator for help, locked out or without their mailbox).
"""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError, no_translations

from events.accounts import services as account_services
from events.accounts.auth import password_hash
from events.management.account_input import InvalidValue, account_by_email, check_password, clean_email
from events.management.base import run_step
from hyperion import db

MAX_TRIES = 3  # as Django's changepassword


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = (
        "Set the password of the account with EMAIL: asked twice on a terminal (checked by the site's password "
        "validators), or read from standard input with --password-stdin. Every session of the account ends, "
        "its address counts as confirmed and its failed log-ins are forgotten."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="e-mail address of an existing account")
        parser.add_argument("--password-stdin", action="store_true",
                            help="read the new password from the first line of standard input")

    @no_translations
    def handle(self, *args, email, password_stdin, **options):
        try:
            email = clean_email(email)
        except InvalidValue as exc:
            raise CommandError(str(exc)) from None
        account = run_step(lambda: account_by_email(email))
        if account is None or not account.is_active or account.anonymised:
            raise CommandError(f"no active account with the e-mail address {email!r}")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            try:
                check_password(password, email=email, display_name="")
            except InvalidValue as exc:
                raise CommandError(str(exc)) from None
        elif not sys.stdin.isatty():
            raise CommandError("resetpassword asks for the password on a terminal, and standard input is not one: "
                               "use --password-stdin")
        else:
            password = self._ask(email)
        hashed = run_step(lambda: password_hash(password))
        run_step(lambda: self._save(email, hashed))
        self.stdout.write(self.style.SUCCESS(f"Password changed for {email}; its sessions are ended."))

    def _ask(self, email: str) -> str:
        for _ in range(MAX_TRIES):
            try:
                password = getpass.getpass(f"New password for {email}: ")
                again = getpass.getpass("New password (again): ")
            except (EOFError, KeyboardInterrupt):
                raise CommandError("cancelled: password unchanged") from None
            if password != again:
                self.stderr.write("Error: the two passwords differ.")
                continue
            try:
                check_password(password, email=email, display_name="")
            except InvalidValue as exc:
                self.stderr.write(f"Error: {exc}")
                continue
            return password
        raise CommandError(f"too many tries: password of {email} unchanged")

    @staticmethod
    async def _save(email: str, hashed: str) -> None:
        async with db.write_session() as session:
            try:
                await account_services.password_set_by_operator(session, email=email, password_hash=hashed)
            except account_services.AccountNotFound:
                raise CommandError(f"no active account with the e-mail address {email!r}") from None
