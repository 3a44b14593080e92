"""``manage.py drawlotteries [EVENT_SLUG] [--now]``: draw the seats of lottery openings whose window closed."""

from __future__ import annotations

from django.core.management.base import CommandError, no_translations

from events import errors
from events.management.base import AsyncCommand
from events.ops import services as ops_services
from events.registration import lottery
from events.registration import services as registration_services
from hyperion import db


class Command(AsyncCommand):
    requires_system_checks: list[str] = []
    help = (
        "Draw the seats of every event that opens by lottery and whose window has closed, among the students "
        "who asked in the window (the rest join the waitlist in drawn order), and print each draw's seed. The "
        "web processes do it by themselves when a window closes; this command is for a site that runs with "
        "LOTTERY_DRAWER_IN_WEB off, or for an operator in a hurry. Idempotent: an event is drawn once."
    )

    def add_arguments(self, parser):
        parser.add_argument("event", nargs="?", metavar="EVENT_SLUG", help="only this event")
        parser.add_argument("--now", action="store_true",
                            help="with EVENT_SLUG: close its window now and draw (as staff may)")

    @no_translations
    def handle(self, *args, **options):
        return super().handle(*args, **options)

    async def ahandle(self, *args, event, now, **options):
        if event is None:
            if now:
                raise CommandError("--now needs an EVENT_SLUG: it closes that event's window early")
            drawn, _next = await lottery.draw_due()
            for done in drawn:
                self._report(done.slug, done.outcome)
            self.stdout.write(self.style.SUCCESS(f"{len(drawn)} lottery draw(s)."))
            return
        async with db.read_session() as session:
            found = await ops_services.event_by_slug(session, slug=event)
        if found is None:
            raise CommandError(f"no event with the slug {event!r}")
        async with db.write_session() as session:
            try:
                outcome = await registration_services.lottery_draw(session, event_id=found.id, early=now)
            except errors.EventNotFound:
                raise CommandError(f"{event}: deleted meanwhile") from None
        if outcome is None:
            self.stdout.write(f"{event}: nothing to draw (not a lottery, already drawn, or its window is still open;"
                              " --now closes it)")
            return
        self._report(event, outcome)

    def _report(self, slug: str, outcome: registration_services.DrawOutcome) -> None:
        self.stdout.write(f"{slug}: {outcome.entries} entries, {outcome.confirmed} confirmed, "
                          f"{outcome.waitlisted} waitlisted (seed {outcome.seed})")
