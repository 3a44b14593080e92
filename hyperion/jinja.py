"""The Jinja2 environment of the site's templates (Django's Jinja2 backend, chosen for speed).

Globals: ``url()`` (Django's reverse), ``static()`` (fingerprinted URL), ``messages()``, and Django's
gettext through the i18n extension, so ``{% trans %}`` and ``_()`` read Django's catalogs.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.messages import get_messages
from django.urls import get_script_prefix, reverse
from django.utils import translation
from jinja2 import Environment

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
