"""``manage.py importics FILE --association SLUG``: create or update an association's events from an .ics file."""

from __future__ import annotations

import sys

from django.core.management.base import CommandError, no_translations

from events.errors import DomainError
from events.localtime import site_zone
from events.management.base import AsyncCommand
from events.ops import services as ops_services
from events.ops.ical_import import NotICalendar, ParsedCalendar, calendar_parse
from hyperion import db


class Command(AsyncCommand):
    # Like createsuperuser, an operator task skips the system checks: they cost seconds a run, and
    # `manage.py check` is where they belong.
    requires_system_checks: list[str] = []
    help = (
        "Import the VEVENTs of an iCalendar file into an association, idempotently by UID: a new UID creates "
        "an event, APPROVED (published at once: operators import trusted calendars) unless --draft is given; "
        "a known UID updates the title, description, place and times when they changed; an identical one "
        "is skipped. STATUS:CANCELLED gives a cancelled event. VEVENTs without UID, DTSTART or SUMMARY, "
        "ending before they start, or recurring (RRULE) are skipped with a warning. Floating times and "
        "all-day dates are read in the site's time zone. One transaction: an error imports nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .ics file to read ('-' for standard input)")
        parser.add_argument("--association", required=True, metavar="SLUG",
                            help="slug of the association the events belong to")
        parser.add_argument("--draft", action="store_true",
                            help="create new events as drafts for staff to review instead of approved")

    @no_translations
    def handle(self, *args, file, **options):
        try:
            if file == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(file, "rb") as stream:
                    data = stream.read()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from None
        try:
            parsed = calendar_parse(data, zone=site_zone())
        except NotICalendar as exc:
            raise CommandError(f"{file} is not an iCalendar file: {exc}") from None
        for warning in parsed.warnings:
            self.stderr.write(f"warning: {warning}")
        return super().handle(*args, parsed=parsed, **options)

    async def ahandle(self, *args, parsed: ParsedCalendar, association: str, draft: bool, **options):
        async with db.write_session() as session:
            try:
                outcome = await ops_services.events_import(
                    session, association_slug=association, events=parsed.events, draft=draft,
                    progress=self._progress)
            except ops_services.AssociationNotFound:
                raise CommandError(f"no association with the slug {association!r}") from None
            except DomainError as exc:
                raise CommandError(str(exc.message)) from None
        for note in outcome.notes:
            self.stderr.write(f"warning: {note}")
        skipped = outcome.unchanged + parsed.skipped
        self.stdout.write(self.style.SUCCESS(
            f"created {outcome.created}, updated {outcome.updated}, skipped {skipped}"))

    def _progress(self, done: int, total: int) -> None:
        if total < 1 or (done % max(total // 100, 1) and done < total):  # a hundred redraws at most
            return
        width = 30
        filled = width * done // total
        self.stdout.write(f"\r  importing [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        if done >= total:
            self.stdout.write("")
        self.stdout.flush()
