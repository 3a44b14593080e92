"""Settings of the thread-per-request baseline: the site's settings, with Django's stock sync middleware
and the baseline's own URLs. Same templates (Jinja2), same security settings, no page cache."""

from hyperion.settings import *  # noqa: F403

INSTALLED_APPS = ["django.contrib.messages"]  # stock Django: its ORM request signals stay connected

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "bench.baseline.middleware.session_user",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bench.baseline.urls"
WSGI_APPLICATION = "bench.baseline.wsgi.application"
