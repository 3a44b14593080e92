"""A lottery's entries at an opening, answered without Django's handler (hyperion/quickposts.py says why and how).

During a lottery window every eligible student's ask is an entry, and every entrant gets the same answer: a
redirect to the event's page with the "your entry is recorded" message, in their language. This hook does
the ask's whole work where the register view would (the view's own functions: ``lottery_opening``,
``overlaps_with``, ``lottery_entry``), after the checks Django's stack makes, made by Django's own code on
Django's own request object: the host against ALLOWED_HOSTS, the HTTPS redirect of ``SecurityMiddleware``,
the session (the site's loader, as ``AuthSessionMiddleware``), ``CsrfViewMiddleware``'s check, and the
language ``LanguageMiddleware`` would activate. The answer sent is the one Django's handler gave the last
entrant in the same language, host and scheme, kept once the view marked it common.

Whatever is not the common case goes to Django, with nothing written: no answer kept yet, a request that
carries an earlier message (its cookie would merge into the answer), a session that is not a verified
student's, a CSRF token that fails or must be renewed, an ask that overlaps the student's events (the
confirmation page), an entry the statement did not write (an ask already made, an event changed meanwhile).
"""

from __future__ import annotations

import io
import logging
import re

from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils import translation

from events.views import registration
from hyperion import hooks

logger = logging.getLogger("hyperion.quick")

# events/urls.py: path("events/<slug:slug>/register/", ...); the slug converter's pattern.
_REGISTER_PATH = re.compile(r"/events/([-a-zA-Z0-9_]+)/register/")


def _unused_get_response(request):  # Django's middleware classes want one; only their hooks are called
    raise AssertionError("not called")


class LotteryEntries:
    cookies_allowed = frozenset({CookieStorage.cookie_name})

    def __init__(self) -> None:
        self.csrf = CsrfViewMiddleware(_unused_get_response)
        self.security = SecurityMiddleware(_unused_get_response)
        self.sessions = hooks.session_loader()

    def wants(self, scope) -> bool:
        match = _REGISTER_PATH.fullmatch(scope["path"])
        return match is not None and registration.lottery_opening(match[1]) is not None

    async def answer(self, scope, body: bytes, kept):
        match = _REGISTER_PATH.fullmatch(scope["path"])
        opening = registration.lottery_opening(match[1]) if match else None
        if opening is None or scope.get("root_path"):
            return None
        slug = match[1]  # type: ignore[index]  # matched above
        request = ASGIRequest(scope, io.BytesIO(body))
        try:
            host = request.get_host()
        except DisallowedHost:
            return None
        if self.security.process_request(request) is not None:  # the HTTPS redirect
            return None
        if CookieStorage.cookie_name in request.COOKIES:
            return None
        user = await self.sessions.user_for_request(request)
        if (not user.is_authenticated or not user.is_verified
                or getattr(request, "_hyperion_clear_session_cookie", False)):
            return None
        request.user = user
        self.csrf.process_request(request)
        if (self.csrf.process_view(request, registration.register, (slug,), {}) is not None
                or request.META.get("CSRF_COOKIE_NEEDS_UPDATE")):
            return None
        key = ("lottery-entry", slug, translation.get_language_from_request(request), host, request.scheme)
        start = kept(key)
        if start is None:
            return key, None
        if request.POST.get("confirm_overlap") != "yes" and await registration.overlaps_with(user.id, slug, opening):
            return None
        if await registration.lottery_entry(user.id, opening) is None:
            return None
        return key, start


lottery_entries = LotteryEntries()
