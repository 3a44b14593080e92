"""Test settings: the site's settings with a test secret, a fast password hasher and no HTTPS redirect
(the test client speaks plain HTTP). The database URL is chosen by tests/conftest.py (--db). A developer's
.env (which `make run` writes) is not read: the tests, and the commands and servers they start, see only
the environment."""

import os

os.environ.setdefault("HYPERION_ENV_FILE", "")

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-that-is-long-enough-for-django-checks-0123456789")
os.environ.setdefault("DEBUG", "false")

if "MEDIA_ROOT" not in os.environ:
    # Uploaded images go to a folder of this test session, never the checkout's data folder; servers and
    # commands the tests start inherit it through the environment. Removed when the session ends.
    import atexit
    import shutil
    import tempfile

    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="hyperion-test-media-")
    atexit.register(shutil.rmtree, os.environ["MEDIA_ROOT"], ignore_errors=True)

from hyperion.settings import *  # noqa: E402,F403

# PBKDF2 would spend ~0.3 s per password; the hasher itself is Django's and not what the tests check.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # noqa: S303
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
# The concurrency tests queue hundreds of transactions on one event's lock at once: the pool wait they
# cause is not what they test (admission control has its own tests), so give it room.
DB_POOL_TIMEOUT = 30.0
# And more transactions at once than the site's default pool of 10: the controls of those tests (no lock, a
# pause between check and write) must be able to oversell.
DB_MAX_OVERFLOW = int(os.environ.get("DB_MAX_OVERFLOW", "10"))
# Test data is often inserted directly, past the services that invalidate the page cache: the cache is off
# here, and the tests of the cache turn it on (a server they start, with PAGE_CACHE_SECONDS in its
# environment).
PAGE_CACHE_SECONDS = float(os.environ.get("PAGE_CACHE_SECONDS", "0"))
