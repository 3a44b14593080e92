"""Async-native middleware: Django's own security, CSP, clickjacking, CSRF and messages, run inline; the
session's user; the language; a database outage as the 503 page.

Django's classes are sync, mixin-based ones, and under ASGI each of their hooks hops to a thread
(six hops per request in Django 6.1, measured here). Their hooks do no I/O (the request body is already
read), so these wrappers call them directly on the event loop: Django's code still makes every security
decision, without the hops.
"""

from __future__ import annotations

import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.messages import get_messages
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.contrib.messages.storage.cookie import CookieStorage
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.csp import CSP, build_policy
from django.utils.functional import SimpleLazyObject, empty

from hyperion import hooks
from hyperion.errors import is_database_unavailable, service_unavailable

logger = logging.getLogger("hyperion")


def _unused_get_response(request):  # Django's classes want one; only their hooks are called
    raise AssertionError("not called")


class _AsyncMiddleware:
    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)  # type: ignore[type-var]  # each subclass defines an async __call__


class SecurityHeadersMiddleware(_AsyncMiddleware):
    """HTTPS redirect, HSTS, nosniff, referrer, opener and permissions policies, frame denial and the CSP header."""

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        self.security = SecurityMiddleware(_unused_get_response)
        self.frames = XFrameOptionsMiddleware(_unused_get_response)
        self.csp = ContentSecurityPolicyMiddleware(_unused_get_response)
        self._policies = _NoncelessPolicies()

    async def __call__(self, request):
        self.csp.process_request(request)
        response = self.security.process_request(request)  # the HTTPS redirect, if any
        if response is None:
            response = await self.get_response(request)
        response = self.security.process_response(request, response)
        response = self.frames.process_response(request, response)
        permissions_policy = settings.PERMISSIONS_POLICY
        if permissions_policy:  # Django has no setting for it; a view's own value wins, as for CSP
            response.headers.setdefault("Permissions-Policy", permissions_policy)
        return self.content_security_policy(request, response)

    def content_security_policy(self, request, response):
        """Django's ``ContentSecurityPolicyMiddleware.process_response`` (6.1.3, a copy: the tripwire compares
        it), with the header of a policy that holds no nonce built once per policy rather than per response:
        ``build_policy`` then depends on the policy alone: the same string, rebuilt for every response."""
        nonce = getattr(request, "_csp_nonce", None)
        sentinel = object()
        if (csp_config := getattr(response, "_csp_config", sentinel)) is sentinel:
            csp_config = settings.SECURE_CSP
        if (csp_ro_config := getattr(response, "_csp_ro_config", sentinel)) is sentinel:
            csp_ro_config = settings.SECURE_CSP_REPORT_ONLY
        for header, config in ((CSP.HEADER_ENFORCE, csp_config), (CSP.HEADER_REPORT_ONLY, csp_ro_config)):
            if config and header not in response:
                response.headers[str(header)] = self._policies.header(config, nonce)
        return response


class _NoncelessPolicies:
    """The CSP header of the last policies seen, for responses whose nonce was never generated (a nonce makes
    every header different: those are built each time). Keyed by the policy object itself, held here so
    its identity cannot be reused: ``override_settings`` or a view's ``csp_override`` bring a new object."""

    def __init__(self) -> None:
        self._built: dict[int, tuple[dict, str]] = {}

    def header(self, config: dict, nonce) -> str:
        if nonce:  # the LazyNonce is true once generated: the page used it
            return build_policy(config, nonce)
        built = self._built.get(id(config))
        if built is None or built[0] is not config:
            if len(self._built) >= 16:  # a handful of policies in practice (the setting, a few views' overrides)
                self._built.clear()
            built = self._built[id(config)] = (config, build_policy(config))
        return built[1]


class AuthSessionMiddleware(_AsyncMiddleware):
    """Puts ``request.user`` on the request from the session cookie (one query, only when a cookie is sent),
    through the app's session loader (settings.SESSION_LOADER, hyperion.hooks.SessionLoader)."""

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        self.sessions = hooks.session_loader()

    async def __call__(self, request):
        try:
            request.user = await self.sessions.user_for_request(request)
        except Exception as error:
            if not is_database_unavailable(error):
                raise
            logger.warning("database unavailable while loading the session: %s", error)
            request.user = self.sessions.anonymous
            return service_unavailable(request)
        response = await self.get_response(request)
        self.sessions.apply_cookie(request, response)
        return response


class LanguageMiddleware(_AsyncMiddleware):
    """Django's language choice (the switch's cookie, then the browser's Accept-Language, then French),
    activated for this request only: asgiref's Local keeps it per task, so concurrent requests never mix
    languages. (users.language, saved by the switch, is for e-mails.)"""

    async def __call__(self, request):
        language = translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = await self.get_response(request)
        finally:
            translation.deactivate()
        response.headers.setdefault("Content-Language", language)
        if response.has_header("Vary"):
            patch_vary_headers(response, self.VARY)
        else:  # what patch_vary_headers writes on a response without Vary, without its parsing
            response.headers["Vary"] = self.NEW_VARY
        return response

    VARY = ("Accept-Language", "Cookie")
    NEW_VARY = ", ".join(VARY)


class CsrfAndMessagesMiddleware(_AsyncMiddleware):
    """Django's CSRF protection and cookie-stored messages."""

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        self.csrf = CsrfViewMiddleware(_unused_get_response)
        self.messages = MessageMiddleware(_unused_get_response)

    async def __call__(self, request):
        request._messages = LazyMessages(request)  # MessageMiddleware.process_request, made when first used
        self.csrf.process_request(request)
        response = await self.get_response(request)
        response = self.csrf.process_response(request, response)
        storage = request._messages
        if type(storage) is not LazyMessages or storage._wrapped is not empty:
            if type(storage) is LazyMessages:
                request._messages = storage._wrapped
            response = self.messages.process_response(request, response)
        # else nobody read or added a message: Django's process_response would store nothing (the storage is
        # neither used nor added to), so it is skipped with the storage that was never made.
        # The message storage and the request refer to each other: left so, every request and all it holds
        # waited for the cyclic garbage collector. The messages are stored in the response by now.
        del request._messages
        return response

    async def process_view(self, request, view_func, view_args, view_kwargs):
        return self.csrf.process_view(request, view_func, view_args, view_kwargs)


class DatabaseOutagePageMiddleware(_AsyncMiddleware):
    """A database outage anywhere in a view becomes the 503 "try again" page (hyperion/errors.py), never a
    500 with a traceback; any other exception goes on to Django's handling unchanged.

    Django's place for this is ``process_exception``, but Django hands a view's exception to the exception
    middleware through a thread (``sync_to_async``), for every exception, a view's ``Http404`` included: a
    thread hop per "not found" on a site that keeps requests on the event loop. So this middleware calls
    the async view itself, from ``process_view``; listed last in MIDDLEWARE, its hook runs after every other
    one (the CSRF check), right where Django would call the view."""

    async def __call__(self, request):
        return await self.get_response(request)

    async def process_view(self, request, view_func, view_args, view_kwargs):
        if not iscoroutinefunction(view_func):
            return None  # let Django call it (there are no sync views on the site)
        try:
            return await view_func(request, *view_args, **view_kwargs)
        except Exception as error:
            if not is_database_unavailable(error):
                raise
            logger.warning("database unavailable during %s %s: %s", request.method, request.path, error)
            return service_unavailable(request)


class LazyMessages(SimpleLazyObject):
    """``request._messages``: the storage Django's ``MessageMiddleware.process_request`` puts there
    (``default_storage(request)``), made the first time a view adds a message or a page reads them. Making it
    costs a storage and its cookie signer on every request, though most requests neither add nor read any
    (the largest cost of the old CSRF-and-messages middleware on /healthz)."""

    def __init__(self, request) -> None:
        super().__init__(lambda: default_storage(request))


def page_messages(request):
    """The messages a page shows (the ``messages()`` of templates): Django's ``get_messages``, except that
    on a request that brought no messages cookie and added no message the cookie storage would hold none, so
    an empty tuple answers without making it. Reading an empty storage marks nothing (the page only iterates
    messages it has), so the response is the same either way: no messages cookie set or deleted."""
    storage = getattr(request, "_messages", ())
    if (type(storage) is LazyMessages and storage._wrapped is empty
            and settings.MESSAGE_STORAGE == "django.contrib.messages.storage.cookie.CookieStorage"
            and CookieStorage.cookie_name not in request.COOKIES):
        return ()
    return get_messages(request)
