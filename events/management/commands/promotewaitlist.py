"""``manage.py promotewaitlist [EVENT_SLUG]``: give free seats to the waitlist, in order (safe at any time)."""

from __future__ import annotations

from django.core.management.base import CommandError, no_translations

from events import errors
from events.management.base import AsyncCommand
from events.ops import services as ops_services
from events.registration import services as registration_services
from events.rules import visibility
from hyperion import db


class Command(AsyncCommand):
    # Like createsuperuser, an operator task skips the system checks: they cost seconds a run, and
    # `manage.py check` is where they belong.
    requires_system_checks: list[str] = []
    help = (
        "Fill the free seats of an event from its waitlist, first in line first (passing on the offers not "
        "accepted in time, for an event whose promotions are offers), and print how many were promoted. "
        "Without EVENT_SLUG: every approved event not yet over that has a waitlist or offers. Idempotent: "
        "a second run promotes nobody unless seats were freed in between."
    )

    def add_arguments(self, parser):
        parser.add_argument("event", nargs="?", metavar="EVENT_SLUG", help="only this event")

    @no_translations
    def handle(self, *args, **options):
        return super().handle(*args, **options)

    async def ahandle(self, *args, event, **options):
        async with db.read_session() as session:
            if event is None:
                targets = await ops_services.events_with_waitlist(session)
            else:
                found = await ops_services.event_by_slug(session, slug=event)
                if found is None:
                    raise CommandError(f"no event with the slug {event!r}")
                if not visibility.goes_ahead(found.status):
                    self.stdout.write(f"{found.slug}: {found.status.value}, not approved: nobody promoted.")
                    return
                targets = [found]
        if not targets:
            self.stdout.write("No approved event to come has a waitlist: nobody promoted.")
            return
        total = 0
        for number, target in enumerate(targets, 1):
            async with db.write_session() as session:
                try:
                    promoted = await registration_services.waitlist_promote(session, event_id=target.id)
                except errors.EventNotFound:  # deleted since the list was read
                    self.stdout.write(f"[{number}/{len(targets)}] {target.slug}: deleted meanwhile, skipped")
                    continue
            total += len(promoted)
            self.stdout.write(f"[{number}/{len(targets)}] {target.slug}: {len(promoted)} promoted")
        self.stdout.write(self.style.SUCCESS(f"{total} promoted in {len(targets)} event(s)."))
