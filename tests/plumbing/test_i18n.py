"""The French catalog translates every message the site can show.

The messages are found as scripts/i18n-extract.sh finds them: Babel's extraction over locale/babel.cfg
(Python with Django's gettext names, the templates through Jinja2's own parser, HTML attributes included),
here in-process. The scripts under static/js show only text the server made (the live seat counter's
comes in its stream, in the page's language): they must hold none of their own.
"""

from __future__ import annotations

import re
from functools import cache

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from tests import support

MAPPING = support.ROOT / "locale" / "babel.cfg"
CATALOG = support.ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"


@cache  # one walk over the sources for the module's tests
def _extracted() -> dict[tuple[str, str | None], tuple[tuple[str, ...], list[str]]]:
    """(msgid, context) -> (the message, with its plural if any; where it is used)."""
    with MAPPING.open() as mapping:
        method_map, options_map = parse_mapping_cfg(mapping, filename=str(MAPPING))
    found: dict[tuple[str, str | None], tuple[tuple[str, ...], list[str]]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
            str(support.ROOT), method_map, options_map, strip_comment_tags=True):
        forms = message if isinstance(message, tuple) else (message,)
        if not forms[0]:
            continue  # _("") is not a message
        found.setdefault((forms[0], context), (forms, []))[1].append(f"{filename}:{lineno}")
    return found


def _catalog():
    with CATALOG.open("rb") as po:
        return read_po(po, locale="fr")


def test_the_extraction_finds_the_messages_of_python_templates_and_html_attributes():
    """The extraction itself works: a message from each kind of source, attribute values included."""
    found = _extracted()
    assert ("Filter events", None) in found  # aria-label="{{ _('Filter events') }}"
    assert ("All events (iCal)", None) in found  # <link title="{{ _('All events (iCal)') }}">
    assert ("School e-mail", None) in found  # gettext_lazy in a form
    assert found[("%(n)d seat left", None)][0] == ("%(n)d seat left", "%(n)d seats left")  # ngettext


def test_every_message_has_a_french_translation():
    catalog = _catalog()
    missing = []
    for (msgid, context), (forms, used_at) in sorted(_extracted().items()):
        entry = catalog.get(msgid, context=context)
        where = ", ".join(used_at[:3])
        if entry is None:
            missing.append(f"{msgid!r} (not in the catalog; {where})")
            continue
        translations = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if len(forms) > 1 and (not entry.pluralizable or entry.id[1] != forms[1]):
            missing.append(f"{msgid!r} (its plural {forms[1]!r} is not in the catalog; {where})")
        elif entry.fuzzy:
            missing.append(f"{msgid!r} (fuzzy; {where})")
        elif len(forms) > 1 and len(translations) != catalog.num_plurals:
            missing.append(f"{msgid!r} ({len(translations)} of {catalog.num_plurals} plural forms; {where})")
        elif not all(translations):
            missing.append(f"{msgid!r} (no French text; {where})")
    assert not missing, (f"{len(missing)} messages lack a French translation in {CATALOG.name} "
                         "(scripts/i18n-extract.sh, then translate):\n" + "\n".join(missing))


def test_french_translations_keep_the_placeholders_of_their_message():
    """A translation that drops or renames a %(name)s placeholder would raise (or lose data) at render."""
    problems = [f"{message.id!r}: {'; '.join(str(error) for error in errors)}"
                for message, errors in _catalog().check() if errors]
    assert not problems, "\n".join(problems)


# What a script may spell out: code, not words for people (event and class names, selectors, keywords).
# What a script may spell for the browser, not for people: names, [data-…] and .class/#id selectors, MIME types.
_CODE_LITERAL = re.compile(r"use strict|[a-z][a-z0-9-]*|\[[a-z][a-z0-9-]*\]|[.#][a-z][a-z0-9-]*|[a-z]+/[a-z0-9.+-]+")
_STRING_LITERAL = re.compile(r"\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)'|`([^`]*)`")


def test_scripts_hold_no_user_facing_text():
    scripts = sorted((support.ROOT / "static" / "js").glob("**/*.js"))
    assert scripts  # the live seat counter at least
    found = []
    for script in scripts:
        code = re.sub(r"/\*.*?\*/", "", script.read_text(), flags=re.DOTALL)
        for number, line in enumerate(code.splitlines(), start=1):
            line = re.sub(r"^\s*//.*|\s//.*$", "", line)  # comments say why, in English, for us
            for match in _STRING_LITERAL.finditer(line):
                text = next(group for group in match.groups() if group is not None)
                if re.search(r"[^\W\d_]", text) and not _CODE_LITERAL.fullmatch(text):
                    found.append(f"{script.relative_to(support.ROOT)}:{number}: {match.group(0)}")
    assert not found, ("text for people belongs to the catalog (the server renders it in the page's "
                       "language), not to a script:\n" + "\n".join(found))
