"""``manage.py exportics``: write the published events (approved and cancelled) as one .ics file."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import CommandError
from django.urls import reverse

from events.feeds import ical
from events.feeds import queries as feed_queries
from events.management.base import AsyncCommand
from hyperion import db

# Every published event, however old: the feed query keeps the events that end after this.
EVERYTHING_SINCE = datetime(1900, 1, 1, tzinfo=UTC)


class Command(AsyncCommand):
    # Like createsuperuser, an operator task skips the system checks: they cost seconds a run, and
    # `manage.py check` is where they belong.
    requires_system_checks: list[str] = []
    help = (
        "Write every published event (approved and cancelled, past ones included) of the site or of one "
        "association as an iCalendar file, to standard output or to --output. Drafts, submitted and "
        "declined events are left out. Each event keeps its UID (event-ID@hyperion-events) and links to its "
        "page under --base-url."
    )

    def add_arguments(self, parser):
        parser.add_argument("--association", metavar="SLUG", help="only this association's events")
        parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
        parser.add_argument("--base-url", default=None,
                            help="address of the site, for the events' links (default: SITE_URL, now "
                                 f"{settings.SITE_URL})")

    def handle(self, *args, association, output, base_url, **options):
        base_url = base_url or settings.SITE_URL  # the address the e-mails link to, set once for the site
        base = urlsplit(base_url)
        if base.scheme not in ("http", "https") or not base.netloc or base.query or base.fragment:
            raise CommandError(f"--base-url must be an http(s) address like https://events.example.org, "
                               f"not {base_url!r}")
        body, count = super().handle(*args, association=association, base_url=base_url.rstrip("/"), **options)
        if output is None or output == "-":
            self.stdout.flush()
            binary = getattr(self.stdout, "buffer", None)  # the bytes as they are: lines end in CRLF
            if binary is not None:
                binary.write(body)
                binary.flush()
            else:  # a text stream (call_command(stdout=StringIO()))
                self.stdout.write(body.decode(), ending="")
            self.stderr.write(f"Exported {count} events.")
            return
        try:
            _write_atomically(Path(output), body)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Exported {count} events to {output}."))

    async def ahandle(self, *args, association, base_url, **options):
        async with db.read_session() as session:
            name = settings.SITE_NAME
            if association is not None:
                found = await feed_queries.association_by_slug(session, slug=association)
                if found is None:
                    raise CommandError(f"no association with the slug {association!r}")
                name = f"{settings.SITE_NAME} – {found.name}"
            rows = await feed_queries.feed_events_published(session, since=EVERYTHING_SINCE,
                                                             association_slug=association)

        def event_url(slug: str) -> str:
            return base_url + reverse("event_detail", kwargs={"slug": slug})

        return ical.calendar_events(rows, name=name, event_url=event_url), len(rows)


def _write_atomically(path: Path, body: bytes) -> None:
    """A reader (a web server publishing the file, say) sees the old file or the new one, never half."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(body)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would hide it from a web server
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
