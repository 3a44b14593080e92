"""Settings of the servers the fault tests and the harness start: the production settings
(hyperion.settings, everything read from the environment, DB_POOL_TIMEOUT included), served over plain
HTTP on loopback. (tests.settings pins DB_POOL_TIMEOUT to 30 s for the concurrency tests, so a pool
timeout given in the environment would be ignored there.)"""

import os

for _name, _value in {
    "SECRET_KEY": "faults-only-secret-key-that-is-long-enough-for-django-checks-0123456789",
    "DEBUG": "false",
    "SECURE_SSL_REDIRECT": "false",
    "SECURE_HSTS_SECONDS": "0",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "LOG_LEVEL": "INFO",
}.items():
    os.environ.setdefault(_name, _value)

from hyperion.settings import *  # noqa: E402,F403
