"""The Jinja2 environment of the site's templates (Django's Jinja2 backend, chosen for speed).

Globals: ``url()`` (Django's reverse), ``static()`` (fingerprinted URL), ``messages()``, and Django's
gettext through the i18n extension, so ``{% trans %}`` and ``_()`` read Django's catalogs.

A page rendered for a request gets request-bound versions of ``_``/``gettext``/``ngettext``,
``get_language`` and ``url`` from ``request_context`` (a context processor): the same answers, without
looking up the active language and script prefix (asgiref Locals, a few µs each) at every one of a
page's ~40 calls. Renders without a request (e-mails, cached fragments) use the globals.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.contrib.messages import get_messages
from django.urls import get_script_prefix, reverse
from django.utils import translation
from django.utils.translation import trans_real
from jinja2 import Environment, pass_context
from markupsafe import Markup

from hyperion.staticfiles import fingerprint


def local_moment(moment):
    """A stored UTC moment in the site's zone, for the management tables (public pages pre-format)."""
    from events.presenters import moment_label

    return moment_label(moment)


def static(name: str) -> str:
    return f"{settings.STATIC_URL}{name}?v={fingerprint(str(settings.STATIC_ROOT), name)}"


# reverse() walks the URL resolver's patterns on every call (~60 µs; a page calls it a dozen times), yet its
# answer depends only on its arguments and the script prefix: remembered here, bounded.
_reversed: dict[tuple, str] = {}
_REVERSED_MAX = 20_000


def url(name: str, *args, **kwargs) -> str:
    key = (get_script_prefix(), name, args, tuple(sorted(kwargs.items())) if kwargs else ())
    try:
        return _reversed[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable argument: no memory
        return reverse(name, args=args or None, kwargs=kwargs or None)
    path = reverse(name, args=args or None, kwargs=kwargs or None)
    if len(_reversed) >= _REVERSED_MAX:
        _reversed.clear()
    _reversed[key] = path
    return path


@cache
def _url_under(prefix: str):
    """url() for pages served under one script prefix (the prefix is part of the remembered key)."""

    def url_for_prefix(name: str, *args, **kwargs) -> str:
        try:
            return _reversed[(prefix, name, args, tuple(sorted(kwargs.items())) if kwargs else ())]
        except (KeyError, TypeError):
            return url(name, *args, **kwargs)  # reverse() reads the same prefix, set for this request

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
    translated: dict[str, Markup] = {}

    @pass_context
    def gettext(__context, __string: str, **variables):
        rv = translated.get(__string)
        if rv is None:
            # Django's gettext normalises line ends first (trans_real.gettext), then asks this catalog.
            message = __string.replace("\r\n", "\n").replace("\r", "\n")
            rv = Markup(catalog.gettext(message) if message else "")  # noqa: S704 - as Jinja's own  # nosec B704
            if len(translated) < _TRANSLATED_MAX:
                translated[__string] = rv
        if not __context.eval_ctx.autoescape:
            rv = str(rv)
        return rv % variables

    @pass_context
    def ngettext(__context, __singular: str, __plural: str, __num: int, **variables):
        variables.setdefault("num", __num)
        rv = catalog.ngettext(__singular, __plural, __num)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)  # noqa: S704 - as Jinja's own  # nosec B704
        return rv % variables

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext, "get_language": lambda: language}


def request_context(request) -> dict:
    """Context processor (settings.TEMPLATES): the request's language and script prefix, bound once."""
    language = translation.get_language()
    if language is None:  # translations deactivated: Django's own functions know what that means
        return {}
    return {**_template_i18n(language), "url": _url_under(get_script_prefix())}


def environment(**options) -> Environment:
    options.setdefault("extensions", [])
    options["extensions"] = [*options["extensions"], "jinja2.ext.i18n"]
    env = Environment(**options)  # noqa: S701 - settings.TEMPLATES passes autoescape=True  # nosec B701
    env.install_gettext_callables(translation.gettext, translation.ngettext, newstyle=True)
    env.globals.update(
        url=url,
        static=static,
        messages=get_messages,
        get_language=translation.get_language,
        LANGUAGES=settings.LANGUAGES,
        local_moment=local_moment,
    )
    return env
