"""WSGI entry point of the baseline: ``gunicorn bench.baseline.wsgi:application --worker-class gthread``."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
