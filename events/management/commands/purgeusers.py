"""``manage.py purgeusers --inactive-since DATE``: anonymise the accounts nobody has used since DATE."""

from __future__ import annotations

import re
from datetime import date, datetime, time

from django.core.management.base import CommandError, no_translations

from events.errors import DomainError
from events.localtime import site_zone
from events.management.base import AsyncCommand
from events.ops import services as ops_services
from hyperion import db

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Command(AsyncCommand):
    # Like createsuperuser, an operator task skips the system checks: they cost seconds a run, and
    # `manage.py check` is where they belong.
    requires_system_checks: list[str] = []
    help = (
        "Anonymise the accounts whose last log-in (or creation, if they never logged in) is before DATE "
        "(local midnight): e-mail, name, password, promo and feed token are replaced, sessions and "
        "memberships deleted, registrations kept so that events keep their counts. Staff accounts, accounts "
        "already anonymised, and accounts still in use (a live session, a place at an event to come) are "
        "kept. One audit entry with the count."
    )

    def add_arguments(self, parser):
        parser.add_argument("--inactive-since", required=True, metavar="YYYY-MM-DD",
                            help="anonymise accounts not used since this date (not in the future)")
        parser.add_argument("--dry-run", action="store_true", help="only count the accounts, change nothing")

    @no_translations
    def handle(self, *args, inactive_since, **options):
        try:
            if not ISO_DATE.match(inactive_since):
                raise ValueError
            day = date.fromisoformat(inactive_since)
        except ValueError:
            raise CommandError(f"--inactive-since must be a date as YYYY-MM-DD, not {inactive_since!r}") from None
        zone = site_zone()
        if day > datetime.now(zone).date():
            raise CommandError(f"--inactive-since {day.isoformat()} is in the future")
        return super().handle(*args, day=day, inactive_before=datetime.combine(day, time.min, tzinfo=zone),
                              **options)

    async def ahandle(self, *args, day: date, inactive_before: datetime, dry_run: bool, **options):
        async with db.write_session() as session:
            try:
                count = await ops_services.users_purge(session, inactive_before=inactive_before, dry_run=dry_run,
                                                       progress=self._progress)
            except DomainError as exc:
                raise CommandError(str(exc.message)) from None
        if dry_run:
            self.stdout.write(f"Would anonymise {count} account(s) inactive since {day.isoformat()} "
                              "(dry run: nothing changed).")
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Anonymised {count} account(s) inactive since {day.isoformat()}."))

    def _progress(self, done: int, total: int) -> None:
        if total < 1:
            return
        width = 30
        filled = width * done // total
        self.stdout.write(f"\r  anonymising [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        if done >= total:
            self.stdout.write("")
        self.stdout.flush()
