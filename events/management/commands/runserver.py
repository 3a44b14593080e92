"""``manage.py runserver``: serve the ASGI app under uvicorn (uvloop, httptools through the site's own protocol,
hyperion/httpprotocol.py), reloading in DEBUG."""

import os
import re

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hyperion.httpprotocol import PROTOCOL as HTTP_PROTOCOL

ADDRPORT = re.compile(r"^(?:(?P<host>[\w.:\[\]-]+):)?(?P<port>\d+)$")


class Command(BaseCommand):
    help = "Serve the site under uvicorn at ADDRPORT (default 127.0.0.1:8000)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--noreload", action="store_true", help="do not reload on code changes")
        parser.add_argument("--workers", type=int, default=1, help="worker processes (no reload with >1)")
        parser.add_argument(
            "--limit-concurrency", type=int, default=settings.SERVER_LIMIT_CONCURRENCY,
            help="requests served at once per worker before answering 503 (admission limit)",
        )

    def handle(self, *args, addrport, noreload, workers, limit_concurrency, **options):
        match = ADDRPORT.match(addrport)
        if not match:
            raise CommandError(f"{addrport!r} is not a port or an address:port.")
        host = (match["host"] or "127.0.0.1").strip("[]")
        port = int(match["port"])
        if not 0 < port < 65536:
            raise CommandError(f"port {port} is out of range: a port is a number from 1 to 65535.")
        reload = settings.DEBUG and not noreload and workers == 1
        os.environ.setdefault("UV_THREADPOOL_SIZE", "1")  # see hyperion/asgi.py
        self.stdout.write(f"Serving Hyperion Events at http://{host}:{port}/ (uvicorn, {workers} worker(s))")
        uvicorn.run(
            "hyperion.asgi:application",
            host=host,
            port=port,
            reload=reload,
            reload_dirs=[str(settings.BASE_DIR)] if reload else None,
            workers=None if reload else workers,
            loop="uvloop",
            http=HTTP_PROTOCOL,  # httptools, with header timeouts and a limit that counts requests
            ws="none",  # the site speaks no WebSocket (the live counter is server-sent events)
            lifespan="on",
            limit_concurrency=limit_concurrency or None,
            timeout_graceful_shutdown=settings.SERVER_GRACEFUL_TIMEOUT,
            log_level="info" if settings.DEBUG else "warning",
        )
