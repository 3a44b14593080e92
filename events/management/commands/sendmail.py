"""``manage.py sendmail``: deliver the e-mails waiting in the outbox (once, or ``--loop`` as a worker)."""

import asyncio
import signal

from django.conf import settings

from events.management.base import AsyncCommand
from events.notifications import mailer


class Command(AsyncCommand):
    help = ("Send the due e-mails of the outbox and exit, or keep sending with --loop (a long-running worker; "
            "several may run at once).")

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep running until SIGTERM or Ctrl-C")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls when idle")

    async def ahandle(self, *args, loop, interval, **options):
        transport = mailer.Transport(settings.EMAIL_CONFIG)
        if not loop:
            report = await mailer.send_all_due(transport)
            self.stdout.write(f"sent {report.sent}, retried later {report.retried}, failed {report.failed}, "
                              f"dropped {report.dropped}")
            for error in sorted(set(report.errors))[:5]:
                self.stderr.write(f"  error: {error}")
            return
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(number, stop.set)
        self.stdout.write(f"outbox sender running ({transport.kind}); stop with Ctrl-C or SIGTERM")
        self.stdout.flush()
        await mailer.run_loop(stop, interval=interval)
        self.stdout.write("outbox sender stopped")
