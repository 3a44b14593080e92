"""The Jinja2 environment of the site's templates (Django's Jinja2 backend, chosen for speed).

Globals: ``url()`` (Django's reverse), ``static()`` (fingerprinted URL), ``messages()``, Django's
gettext through the i18n extension, so ``{% trans %}`` and ``_()`` read Django's catalogs, and the app's own
(``globals`` in the backend's OPTIONS: names and dotted paths, e.g. ``local_moment``; hyperion/hooks.py).

A page rendered for a request gets request-bound versions of ``_``/``gettext``/``ngettext``,
``get_language`` and ``url`` from ``request_context`` (a context processor): the same answers, without
looking up the active language and script prefix (asgiref Locals, a few µs each) at every one of a
page's ~40 calls. Renders without a request (e-mails, cached fragments) use the globals.
"""

from __future__ import annotations

import re
from functools import cache
from urllib.parse import quote

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.middleware.csrf import get_token
from django.urls import get_resolver, get_script_prefix, reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.http import RFC3986_SUBDELIMS, escape_leading_slashes
from django.utils.translation import trans_real
from jinja2 import Environment, pass_context
from markupsafe import Markup

from hyperion import hooks
from hyperion.middleware import page_messages
from hyperion.staticfiles import fingerprint


def static(name: str) -> str:
    return f"{settings.STATIC_URL}{name}?v={fingerprint(str(settings.STATIC_ROOT), name)}"


# reverse() looks the name up among the resolver's possibilities and builds, formats and searches a regex on
# every call (~20-30 µs; a page calls it a dozen times, an event page with the event's own slug). A route
# compiled once per (script prefix, name) does the same steps (Django 6.1's _reverse_with_prefix: convert,
# substitute, check against the pattern, quote) with the regex already built; anything it does not cover
# (kwargs, a name with several patterns, a value the pattern refuses) goes to reverse() itself, which also
# raises Django's own NoReverseMatch. Memory: one entry per route name, not per URL.
_routes: dict[tuple[str, str], tuple | None] = {}
_ROUTES_MAX = 1_000


def _route(prefix: str, name: str) -> tuple | None:
    key = (prefix, name)
    try:
        return _routes[key]
    except KeyError:
        pass
    possibilities = get_resolver().reverse_dict.getlist(name)
    route = None
    if len(possibilities) == 1 and len(possibilities[0][0]) == 1 and not possibilities[0][2]:
        (result, params), = possibilities[0][0]
        pattern, converters = possibilities[0][1], possibilities[0][3]
        template, regex = prefix.replace("%", "%%") + result, re.compile(f"^{re.escape(prefix)}{pattern}")
        # A route without parameters has one answer per prefix: built now.
        fixed = _checked(template % {}, regex) if not params else None
        route = (template, tuple(params), converters, regex, fixed)
    if len(_routes) >= _ROUTES_MAX:
        _routes.clear()
    _routes[key] = route
    return route


def _reverse_positional(prefix: str, name: str, args: tuple) -> str:
    route = _route(prefix, name)
    if route is not None and len(args) == len(route[1]):
        template, params, converters, regex, fixed = route
        if fixed is not None:
            return fixed
        try:
            subs = {param: converters[param].to_url(value) if param in converters else str(value)
                    for param, value in zip(params, args, strict=True)}
        except ValueError:
            subs = None
        if subs is not None:
            path = _checked(template % subs, regex)
            if path is not None:
                return path
    return reverse(name, args=args or None)


def _checked(candidate: str, regex: re.Pattern) -> str | None:
    if not regex.search(candidate):
        return None
    return escape_leading_slashes(quote(candidate, safe=RFC3986_SUBDELIMS + "/~:@"))


def url(name: str, *args, **kwargs) -> str:
    return _url_under(get_script_prefix())(name, *args, **kwargs)


@cache
def _url_under(prefix: str):
    """url() for pages served under one script prefix (bound once per render by request_context)."""

    def url_for_prefix(name: str, *args, **kwargs) -> str:
        if kwargs:
            return reverse(name, args=args or None, kwargs=kwargs)
        return _reverse_positional(prefix, name, args)

    return url_for_prefix


_TRANSLATED_MAX = 5_000  # templates translate literal strings: a few hundred per language


@cache
def _template_i18n(language: str) -> dict:
    """The i18n extension's newstyle ``gettext``/``ngettext`` for one language.

    Same contract as Jinja's ``_make_new_gettext`` (jinja2/ext.py): the result is trusted markup under
    autoescaping and always %-formatted with the call's keyword arguments (escaped). The catalog is the
    one ``translation.activate(language)`` installs; a translated string is remembered per language.
    """
    catalog = trans_real.translation(language)
    translated: dict[str, str] = {}  # the catalog's answer
    labels: dict[str, str] = {}  # that answer %-formatted without variables ("%%" -> "%")

    @pass_context
    def gettext(__context, __string: str, **variables):
        autoescape = __context.eval_ctx.autoescape
        if autoescape and not variables:  # most calls: a fixed label, its final markup remembered
            done = labels.get(__string)
            if done is not None:
                return done
        rv = translated.get(__string)
        if rv is None:
            # Django's gettext normalises line ends first (trans_real.gettext), then asks this catalog.
            message = __string.replace("\r\n", "\n").replace("\r", "\n")
            rv = Markup(catalog.gettext(message) if message else "")  # noqa: S704 - as Jinja's own  # nosec B704
            if len(translated) < _TRANSLATED_MAX:
                translated[__string] = rv
        if not autoescape:
            rv = str(rv)
        result = rv % variables
        if autoescape and not variables and len(labels) < _TRANSLATED_MAX:
            labels[__string] = result
        return result

    @pass_context
    def ngettext(__context, __singular: str, __plural: str, __num: int, **variables):
        variables.setdefault("num", __num)
        rv = catalog.ngettext(__singular, __plural, __num)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)  # noqa: S704 - as Jinja's own  # nosec B704
        return rv % variables

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext, "get_language": lambda: language}


class _CsrfToken:
    """Django's masked CSRF token for one render, made at its first use and then reused.

    Django's Jinja2 backend puts lazy ``csrf_token``/``csrf_input`` objects in the context that call
    ``get_token`` again at every use, and each call masks the secret anew with 32 draws from the system's
    random source (~45 µs here); a logged-in student's event page used it three times (log-out, language
    and registration forms). One masked token per response is what Django's BREACH protection needs.
    Nothing is made (and no CSRF cookie set) for a page that shows no form.
    """

    __slots__ = ("request", "value")

    def __init__(self, request) -> None:
        self.request = request
        self.value: str | None = None

    def __str__(self) -> str:
        if self.value is None:
            self.value = get_token(self.request)
        return self.value


class _CsrfInput:
    __slots__ = ("token",)

    def __init__(self, token: _CsrfToken) -> None:
        self.token = token

    def __html__(self) -> str:
        return format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', str(self.token))

    __str__ = __html__


def request_context(request) -> dict:
    """Context processor (settings.TEMPLATES): the request's language and script prefix, bound once, and
    its CSRF token made at most once."""
    token = _CsrfToken(request)
    csrf = {"csrf_token": token, "csrf_input": _CsrfInput(token)}
    language = translation.get_language()
    if language is None:  # translations deactivated: Django's own functions know what that means
        return csrf
    return {**_template_i18n(language), "url": _url_under(get_script_prefix()), **csrf}


@receiver(setting_changed)
def _forget_on_settings_change(*, setting: str, **kwargs) -> None:
    """Tests that override the URLconf or the languages get fresh routes and catalogs, as Django's own
    caches do (django/test/signals.py)."""
    if setting in ("ROOT_URLCONF", "FORCE_SCRIPT_NAME"):
        _routes.clear()
        _url_under.cache_clear()
    if setting in ("LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS"):
        _template_i18n.cache_clear()


def environment(**options) -> Environment:
    app_globals = hooks.imported(options.pop("globals", {}))
    options.setdefault("extensions", [])
    options["extensions"] = [*options["extensions"], "jinja2.ext.i18n"]
    env = Environment(**options)  # noqa: S701 - settings.TEMPLATES passes autoescape=True  # nosec B701
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
        translation.gettext, translation.ngettext, newstyle=True)
    env.globals.update(
        url=url,
        static=static,
        messages=page_messages,
        get_language=translation.get_language,
        LANGUAGES=settings.LANGUAGES,
        **app_globals,
    )
    return env
