"""``manage.py pruneimages [--older-than-days N] [--dry-run]``: delete the stored images nothing uses any more."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import CommandError, no_translations

from events.management.base import AsyncCommand
from events.models import utcnow
from events.ops import image_prune
from hyperion import db


class Command(AsyncCommand):
    requires_system_checks: list[str] = []
    help = (
        "Delete the stored files of posters and logos that no event or association uses any more (replaced or "
        "removed) and that were written more than N days ago (default 30: e-mails, share previews and browsers "
        "may still read a replaced image's immutable address for a while)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, default=30, metavar="N",
                            help="only files written more than N days ago (at least 1)")
        parser.add_argument("--dry-run", action="store_true", help="only list the files, delete nothing")

    @no_translations
    def handle(self, *args, older_than_days, **options):
        if older_than_days < 1:
            raise CommandError("--older-than-days must be at least 1: a file written just now may belong to an "
                               "upload whose save has not finished")
        return super().handle(*args, older_than_days=older_than_days, **options)

    async def ahandle(self, *args, older_than_days: int, dry_run: bool, **options):
        async with db.read_connection() as connection:
            in_use = await image_prune.image_hashes_in_use(connection)
        report = image_prune.images_prune(in_use=in_use, older_than=utcnow() - timedelta(days=older_than_days),
                                          dry_run=dry_run)
        for name in report.deleted:
            self.stdout.write(f"  {name}")
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(self.style.SUCCESS(f"{verb} {len(report.deleted)} file(s) of unused images; "
                                             f"kept {report.kept}."))
