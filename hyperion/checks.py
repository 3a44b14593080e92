"""``manage.py check --deploy`` for a site whose security middleware is Django's, run inline.

Django's deploy checks recognise its middleware by dotted path: with our async wrappers
(hyperion/middleware.py) it would report W001-W003 and then skip every check those gate (HSTS, SSL
redirect, nosniff, frame denial, referrer and opener policies, CSRF cookie), saying nothing. We silence
W001-W003 (the wrappers are there, and tests check their headers) and run those gated checks of
Django's again with the wrappers recognised, so ``check --deploy`` keeps its full meaning.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, register
from django.core.checks.security import base, csrf

SECURITY_WRAPPER = "hyperion.middleware.SecurityHeadersMiddleware"
CSRF_WRAPPER = "hyperion.middleware.CsrfAndMessagesMiddleware"

GATED_CHECKS = [
    base.check_sts,
    base.check_sts_include_subdomains,
    base.check_sts_preload,
    base.check_content_type_nosniff,
    base.check_ssl_redirect,
    base.check_xframe_deny,
    base.check_referrer_policy,
    base.check_cross_origin_opener_policy,
    csrf.check_csrf_cookie_secure,
]


@register(Tags.security, deploy=True)
def check_security_through_async_middleware(app_configs, **kwargs):
    from unittest import mock  # here, not at import: every web process imports this module, few run checks

    security_on = SECURITY_WRAPPER in settings.MIDDLEWARE
    csrf_on = CSRF_WRAPPER in settings.MIDDLEWARE
    messages = []
    with (
        mock.patch.object(base, "_security_middleware", lambda: security_on),
        mock.patch.object(base, "_xframe_middleware", lambda: security_on),
        mock.patch.object(csrf, "_csrf_middleware", lambda: csrf_on),
    ):
        for check in GATED_CHECKS:
            messages.extend(check(app_configs))
    return messages
