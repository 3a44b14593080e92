"""The ASGI entry point served by uvicorn: ``hyperion.asgi:application``.

A thin wrapper around Django's handler. Django refuses the ASGI lifespan protocol, so the wrapper answers
it: startup creates the SQLAlchemy engine inside uvicorn's event loop and shutdown disposes it (no leaked
connections, no "Event loop is closed" at exit). HTTP goes to Django, except ``/static/`` files, which
are served from memory (see hyperion/staticfiles.py).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hyperion.settings")
# uvloop's libuv keeps a pool of 4 worker threads for DNS lookups and file I/O; the site only resolves the
# database host when it opens a connection, so one worker is plenty (5 threads per process become 2).
os.environ.setdefault("UV_THREADPOOL_SIZE", "1")

import django  # noqa: E402

django.setup(set_prefix=False)

from hyperion.app import HyperionApp  # noqa: E402

application = HyperionApp()
