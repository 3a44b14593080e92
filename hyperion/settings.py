"""Settings, read from the environment (and an optional .env file) through django-environ.

Production-safe by default: DEBUG is off unless asked for, and outside DEBUG a SECRET_KEY must be given.
A configuration error is an ImproperlyConfigured with a one-line message (manage.py prints just that).
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# The real environment wins over the file. `make run` writes a development .env when there is none;
# HYPERION_ENV_FILE names another file, or none when empty (the tests read none).
ENV_FILE = os.environ.get("HYPERION_ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "hyperion-development-only-not-secret"  # noqa: S105 - DEBUG only (refused below)  # nosec B105
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off: set it in the environment or in .env (see .env.example); "
        "for development, `make run` writes a .env with DEBUG=true and a generated key."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The data folder holds the embedded SQLite database (and, later, dev mail files).
DATA_DIR = Path(env.str("HYPERION_DATA_DIR", default=str(BASE_DIR / "data")))

# The one database of the site, spoken to only through SQLAlchemy's asyncio layer (hyperion/db.py).
# No DATABASE_URL: an SQLite file in the data folder (aiosqlite), so a new user needs no server.
DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite+aiosqlite:///{DATA_DIR / 'hyperion.sqlite3'}")


def _check_database_url(url: str) -> None:
    """PostgreSQL or SQLite, in a form SQLAlchemy can read; anything else is refused here, in one line."""
    expected = "postgresql+asyncpg://user:pass@host:5432/db or sqlite+aiosqlite:///path/to/file.sqlite3"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL (expected {expected}).") from None
    if parsed.get_backend_name() not in ("postgresql", "postgres", "sqlite"):
        raise ImproperlyConfigured(
            f"DATABASE_URL: {parsed.drivername}:// is not supported, only PostgreSQL and SQLite ({expected})."
        )


_check_database_url(DATABASE_URL)
DB_POOL_SIZE = env.int("DB_POOL_SIZE", default=10)
# Connections beyond the pool's size are closed as soon as they are returned, so under steady load they are
# opened and closed over and over (106 server processes in 10 s for a 10+10 pool at 1,000 clients, each
# connection set up anew: start-up, codecs, prepared statements). The admission queue already keeps the
# requests inside Django to the pool's size, so by default there is no overflow.
DB_MAX_OVERFLOW = env.int("DB_MAX_OVERFLOW", default=0)
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=5.0)
DB_ECHO = env.bool("DB_ECHO", default=False)
# Shown in pg_stat_activity: tells the site's connections from psql's, a worker's or a test's.
DB_APPLICATION_NAME = env.str("DB_APPLICATION_NAME", default="hyperion")
# PgBouncer in transaction mode cannot keep asyncpg's prepared statements: set this to 0 behind it.
DB_STATEMENT_CACHE_SIZE = env.int("DB_STATEMENT_CACHE_SIZE", default=100)
# The pool hands out the connection returned last (hyperion/db.py says why); false: the oldest idle one.
DB_POOL_LIFO = env.bool("DB_POOL_LIFO", default=True)

# Django's ORM is not used at all: an empty DATABASES makes any ORM query fail loudly.
DATABASES: dict = {}

INSTALLED_APPS = [
    "hyperion",  # the plumbing (hyperion/apps.py): set up before the site that runs on it
    "events",
    "django.contrib.messages",
]

# Async-native middleware only (see hyperion/middleware.py): Django's mixin-based (sync) classes would hop
# to a thread on every request. The security, CSRF, clickjacking, CSP and message hooks of Django's own
# middleware still do the work, called inline.
MIDDLEWARE = [
    "hyperion.middleware.SecurityHeadersMiddleware",
    "hyperion.middleware.AuthSessionMiddleware",
    "hyperion.middleware.LanguageMiddleware",
    "hyperion.middleware.CsrfAndMessagesMiddleware",
    "hyperion.middleware.DatabaseOutagePageMiddleware",  # last: it calls the view, after the CSRF check
]

# What the plumbing (hyperion/) needs from the app, by dotted path: hyperion never imports events
# (hyperion/hooks.py says what each must provide).
LIFESPAN_HOOKS = ["events.live.broadcast.broadcaster", "events.notifications.mailer.sender_in_web",
                  "events.registration.lottery.drawer", "events.registration.offers.sweeper"]
SESSION_LOADER = "events.accounts.auth.session_loader"
# Session reads in flight at once per worker; lookups beyond wait and are read together by the next statement
# (events/accounts/auth.py, SessionReads).
SESSION_READS_AT_ONCE = env.int("SESSION_READS_AT_ONCE", default=4)
# ...unless the first of them has been reading for longer than this (seconds): a distant or overloaded database,
# where waiting for it costs more than a read of one's own (events/accounts/auth.py, SessionReads).
SESSION_READS_PATIENCE = env.float("SESSION_READS_PATIENCE", default=0.02)
# POSTs answered without Django's handler in their common case (hyperion/quickposts.py): a lottery's entries.
QUICK_POSTS = ["events.views.quick.lottery_entries"]

# Our wrappers run Django's security, clickjacking and CSRF middleware; hyperion/checks.py runs the deploy
# checks these three would otherwise switch off.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

ROOT_URLCONF = "hyperion.urls"
ASGI_APPLICATION = "hyperion.asgi.application"

TEMPLATES = [
    {
        # Jinja2 renders the pages: Django's template language cost ~1 ms per list page.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "hyperion.jinja.environment", "autoescape": True,
                    "context_processors": ["hyperion.jinja.request_context"],
                    "globals": {"local_moment": "events.catalog.presenters.moment_label",
                                "absolute_url": "events.catalog.share.absolute_url",
                                "feed_links": "events.feeds.subscribe.feed_links",
                                "event_links": "events.feeds.subscribe.event_links"}},
    },
    {
        # Django's own templates stay available for the form widgets Django renders itself.
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ("email", "display_name")}},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
)

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="fr")
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"

# Uploaded images (event posters, association logos: hyperion/images.py) go through Django's storage API,
# under the name "images": by default files in the data folder, answered from memory by the ASGI app at
# MEDIA_URL (hyperion/mediafiles.py). For an S3-compatible bucket, install django-storages with boto3 (the
# "s3" dependency group) and set IMAGE_STORAGE_BACKEND=storages.backends.s3.S3Storage with its options as
# JSON in IMAGE_STORAGE_OPTIONS (bucket_name, endpoint_url, custom_domain, ...): the bucket then serves the
# images at its own addresses (README, "Images").
MEDIA_URL = env.str("MEDIA_URL", default="/media/")
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
IMAGE_STORAGE_BACKEND = env.str("IMAGE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")
IMAGE_STORAGE_OPTIONS = env.json("IMAGE_STORAGE_OPTIONS", default={}) or (
    {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL} if IMAGE_STORAGE_BACKEND.endswith(".FileSystemStorage")
    else {})
# An image's files are named by their content: writing one again overwrites it with the same bytes (the file
# system storage would otherwise save it under another name). Its addresses are public and kept by the pages:
# a bucket's must not be signed (signed ones expire within the hour).
if IMAGE_STORAGE_BACKEND.endswith(".FileSystemStorage"):
    IMAGE_STORAGE_OPTIONS.setdefault("allow_overwrite", True)
elif IMAGE_STORAGE_BACKEND.endswith(".S3Storage"):
    IMAGE_STORAGE_OPTIONS.setdefault("querystring_auth", False)
    IMAGE_STORAGE_OPTIONS.setdefault("file_overwrite", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "images": {"BACKEND": IMAGE_STORAGE_BACKEND, "OPTIONS": IMAGE_STORAGE_OPTIONS},
}
# An upload's limits: its size in bytes, and its pixels (read from the header, before decoding). Re-encoding
# runs one at a time, IMAGE_QUEUE more may wait (past that: 429). Served images kept in memory: IMAGE_MEMORY_BYTES.
IMAGE_MAX_BYTES = env.int("IMAGE_MAX_BYTES", default=8_000_000)
IMAGE_MAX_PIXELS = env.int("IMAGE_MAX_PIXELS", default=40_000_000)
IMAGE_QUEUE = env.int("IMAGE_QUEUE", default=4)
IMAGE_MEMORY_BYTES = env.int("IMAGE_MEMORY_BYTES", default=32 * 1024 * 1024)
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=True)
STATIC_ROOT = BASE_DIR / "static"

# Sessions live in our own table (events.accounts.auth), not in django.contrib.sessions (which needs the ORM).
SESSION_COOKIE_NAME = "hyperion_session"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
# How long a web process may answer a session from memory without asking the database (0: always ask). Every
# write through the site forgets at once, in every process (events/accounts/session_cache.py); this bounds only
# what is changed behind the site's back, e.g. by hand in psql.
SESSION_CACHE_SECONDS = env.int("SESSION_CACHE_SECONDS", default=60)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "events.views.errors.csrf_failure"
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Powerful browser features the site never uses, turned off for every page (and for anything a page embeds), so
# that injected markup or a compromised script cannot ask for the camera, the location or a payment.
PERMISSIONS_POLICY = env.str("PERMISSIONS_POLICY", default=", ".join(f"{feature}=()" for feature in (
    "accelerometer", "ambient-light-sensor", "autoplay", "bluetooth", "camera", "display-capture",
    "geolocation", "gyroscope", "hid", "idle-detection", "magnetometer", "microphone", "midi", "payment",
    "publickey-credentials-get", "screen-wake-lock", "serial", "usb", "xr-spatial-tracking")))
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
if env.bool("SECURE_PROXY_SSL", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'self'"],
    "object-src": ["'none'"],
}

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
# Larger bodies are refused (413) by the ASGI app before Django reads them: MAX_REQUEST_BODY for every form
# (the largest, an event's description, is well under it), MAX_UPLOAD_BODY for the image upload forms only
# (UPLOAD_PATHS, regular expressions of their paths): twice IMAGE_MAX_BYTES, so that a photo somewhat too
# large gets the form's own message rather than a bare 413.
MAX_REQUEST_BODY = env.int("MAX_REQUEST_BODY", default=2 * 1024 * 1024)
MAX_UPLOAD_BODY = env.int("MAX_UPLOAD_BODY", default=2 * IMAGE_MAX_BYTES)
UPLOAD_PATHS = [r"^/manage/events/[0-9]+/poster/$", r"^/manage/associations/[0-9]+/logo/$"]
# Such large bodies are read before Django knows who sends them: a worker holds at most SERVER_LARGE_BODIES of
# them at once (the others get a 503 with Retry-After before a byte is read), so that anonymous clients cannot
# make it hold thousands (hyperion/bodies.py).
SERVER_LARGE_BODIES = env.int("SERVER_LARGE_BODIES", default=4)
# An uploaded image stays in memory (never a temporary file, which would be blocking disk I/O on the loop):
# the body was read whole, within MAX_UPLOAD_BODY, before Django saw it.
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=MAX_UPLOAD_BODY)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"  # no model uses it; silences Django's check

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # A 403 is one line (method, path, reason), without the traceback Django attaches to PermissionDenied;
    # 500s keep theirs (hyperion/logfilters.py).
    "filters": {"forbidden_in_one_line": {"()": "hyperion.logfilters.ForbiddenInOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {name: {"filters": ["forbidden_in_one_line"]} for name in ("django.request", "django.security.csrf")},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}

# Static files are answered from memory by the ASGI app (hyperion/staticfiles.py); switch it off when a
# reverse proxy or CDN serves static/.
SERVE_STATIC = env.bool("SERVE_STATIC", default=True)

# uvicorn (manage.py runserver): requests a worker serves at once before it answers 503, and how long
# in-flight requests get to finish at shutdown.
SERVER_LIMIT_CONCURRENCY = env.int("SERVER_LIMIT_CONCURRENCY", default=2000)
SERVER_GRACEFUL_TIMEOUT = env.int("SERVER_GRACEFUL_TIMEOUT", default=10)
# The server's own protocol (hyperion/httpprotocol.py): a request's line and headers must arrive within
# SERVER_HEADER_TIMEOUT seconds, else the connection is closed; connections with no request in progress
# (headers not finished, or idle between two requests) do not count against SERVER_LIMIT_CONCURRENCY, and
# past SERVER_MAX_IDLE_CONNECTIONS of them per worker the one that has waited longest is closed. Slow-header
# clients (slowloris) thus neither fill the limit nor run the process out of file descriptors.
SERVER_HEADER_TIMEOUT = env.float("SERVER_HEADER_TIMEOUT", default=10.0)
SERVER_MAX_IDLE_CONNECTIONS = env.int("SERVER_MAX_IDLE_CONNECTIONS", default=2000)
# A request's body must arrive within SERVER_BODY_TIMEOUT seconds of its headers, else a 408 and the connection
# closed. It is read whole before the request waits for its admission turn (hyperion/app.py), so a client
# that declares a body and sends it slowly, or never, holds no turn any page needs.
SERVER_BODY_TIMEOUT = env.float("SERVER_BODY_TIMEOUT", default=10.0)
# Requests a worker lets into Django at once; the others queue in arrival order (hyperion/app.py,
# Admission) and get a 503 with Retry-After after SERVER_QUEUE_TIMEOUT seconds. 0: the database pool
# (size + overflow): pages stored for visitors are answered before the queue, so what enters Django needs
# a connection, and more requests inside than connections would only wait for one there, each holding its
# request and middleware frames. Measured with the benchmark's mix at 1,000 clients: twice the pool held
# ~2 MB more per worker for ~4% more requests a second on a saturated CPU.
# The wait is long on purpose: in a registration rush a student is better served by a place in line
# after 40 s than by a "try again" after 20 s, whose retry would only lengthen the queue.
SERVER_MAX_IN_FLIGHT = env.int("SERVER_MAX_IN_FLIGHT", default=0) or max(DB_POOL_SIZE + DB_MAX_OVERFLOW, 8)
SERVER_QUEUE_TIMEOUT = env.float("SERVER_QUEUE_TIMEOUT", default=60.0)
# When the worker is idle (no request in Django for two checks GC_CHECK_SECONDS apart), at most once per
# GC_FULL_MIN_SECONDS: what the garbage collector has not frozen yet is collected and the survivors frozen out of
# its sight, so that its automatic collections during a rush walk only new objects (with thousands of open pages a
# full one stopped the worker for up to 200 ms, about every second); everything is walked again at an idle moment
# once GC_FULL_MAX_SECONDS have passed, or at twice that regardless (hyperion/collector.py). GC_PACING=false:
# CPython's own collections only.
GC_PACING = env.bool("GC_PACING", default=True)
GC_CHECK_SECONDS = env.float("GC_CHECK_SECONDS", default=0.1)
GC_FULL_MIN_SECONDS = env.float("GC_FULL_MIN_SECONDS", default=2.0)
GC_FULL_MAX_SECONDS = env.float("GC_FULL_MAX_SECONDS", default=120.0)
# Password hashes (log-in, sign-up, password change) running at once per worker, in threads, and waiting for
# one (hyperion/threadgate.py): past the line, a 429 with Retry-After. A PBKDF2 hash takes ~0.3 s of a core,
# so the default line is ~2.5 s long on two threads. PASSWORD_HASH_QUEUE_LOGIN places of the line are kept for
# checks of a password (log-ins), which also take a freed thread first: new hashes (sign-up, password change)
# fill only the rest, so a flood of sign-ups is refused before any log-in is.
PASSWORD_HASH_THREADS = env.int("PASSWORD_HASH_THREADS", default=2)
PASSWORD_HASH_QUEUE = env.int("PASSWORD_HASH_QUEUE", default=16)
PASSWORD_HASH_QUEUE_LOGIN = env.int("PASSWORD_HASH_QUEUE_LOGIN", default=8)

SITE_NAME = env.str("SITE_NAME", default="Hyperion Events")

# Sign-up is for the school's students: e-mail domains accepted (empty: any domain).
SIGNUP_EMAIL_DOMAINS = [domain.lower() for domain in env.list("SIGNUP_EMAIL_DOMAINS", default=[])]

# E-mail. EMAIL_URL: smtp://user:password@host:587 (STARTTLS: smtp+tls://, TLS: smtp+ssl://), or
# consolemail:// (print), or filemail:// (write .eml files). Not set: files in data/mail/, so the embedded
# default needs no mail server.
EMAIL_CONFIG = (env.email_url("EMAIL_URL") if env.str("EMAIL_URL", default="") else
                {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                 "EMAIL_FILE_PATH": str(DATA_DIR / "mail")})
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Hyperion Events <events@hyperion.test>")
# Absolute address of the site, for the links and List-Unsubscribe of e-mails and for feed URLs.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
REMINDER_HOUR = env.int("REMINDER_HOUR", default=18)  # the day before the event, Paris time
DIGEST_HOUR = env.int("DIGEST_HOUR", default=8)  # staff's daily approval-queue digest, Paris time
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=300)  # a claim older than this is retaken
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=100)
OUTBOX_SMTP_CONCURRENCY = env.int("OUTBOX_SMTP_CONCURRENCY", default=8)
# Run the sender as a background task of each web process too (off: run `manage.py sendmail --loop`).
OUTBOX_SENDER_IN_WEB = env.bool("OUTBOX_SENDER_IN_WEB", default=False)
# Lottery openings: each web process draws the seats of a lottery event when its window closes (the first
# ask after the window, and `manage.py drawlotteries`, draw it too; the draw runs once whoever runs it). The
# drawer looks again at least every LOTTERY_DRAWER_INTERVAL seconds for lotteries set up meanwhile.
LOTTERY_DRAWER_IN_WEB = env.bool("LOTTERY_DRAWER_IN_WEB", default=True)
LOTTERY_DRAWER_INTERVAL = env.float("LOTTERY_DRAWER_INTERVAL", default=30.0)
# Waitlist offers: each web process passes an offer not accepted in time to the next in line at its deadline
# (`manage.py promotewaitlist`, and any seat change of the event, do it too), and looks at least every
# OFFER_SWEEPER_INTERVAL seconds for offers made by other processes.
OFFER_SWEEPER_IN_WEB = env.bool("OFFER_SWEEPER_IN_WEB", default=True)
OFFER_SWEEPER_INTERVAL = env.float("OFFER_SWEEPER_INTERVAL", default=60.0)
OUTBOX_RETRY_BASE_SECONDS = env.float("OUTBOX_RETRY_BASE_SECONDS", default=30.0)
# The live seat counter LISTENs on its own connection, straight to PostgreSQL (never through PgBouncer's
# transaction pool). Empty: DATABASE_URL.
DB_LISTEN_URL = env.str("DB_LISTEN_URL", default="")
# An open live-seat stream ends after this long (the browser reconnects at once): bounds how long a
# stream can hold a graceful shutdown.
SSE_MAX_SECONDS = env.int("SSE_MAX_SECONDS", default=120)
# An open page's live seat counter gets at most one value per LIVE_SEATS_INTERVAL seconds (the latest),
# and an event's open pages at most LIVE_SEATS_MAX_WRITES writes a second from a process; a lone change,
# and "full" or "cancelled" flipping, go out at once (events/live/broadcast.py, Broadcaster.publish).
LIVE_SEATS_INTERVAL = env.float("LIVE_SEATS_INTERVAL", default=0.25)
LIVE_SEATS_MAX_WRITES = env.float("LIVE_SEATS_MAX_WRITES", default=1000.0)
# Seconds a rendered public list stays cached in a process (it is also dropped at once on any change).
PAGE_CACHE_SECONDS = env.float("PAGE_CACHE_SECONDS", default=30.0)
# How long a cached list may lag behind a change (seat counts on lists; the event page's counter is live).
PAGE_CACHE_GRACE_SECONDS = env.float("PAGE_CACHE_GRACE_SECONDS", default=1.0)
# Memory a process gives the page cache (fragments and whole public pages), least recently used out first.
PAGE_CACHE_MAX_BYTES = env.int("PAGE_CACHE_MAX_BYTES", default=8 * 1024 * 1024)
