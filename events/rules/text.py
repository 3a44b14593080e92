"""What people may type in a name, a title, a place or a reason: the validator every form uses."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from django import forms
from django.utils.translation import gettext_lazy as _

# Bidirectional controls (embeddings, overrides, isolates, marks): they reorder the text shown after them, so a
# name or a title could make the page, a list or an e-mail read other than what was typed ("Trojan Source").
# They are format characters (Cf) like the rest, listed for the reader.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


# The joiners are format characters too, but they only shape what is around them (emoji sequences such as
# flags and families, Persian and Indic scripts) and never move text.
_JOINERS = frozenset("\u200c\u200d")


_LINE_BREAKS = frozenset("\n\r\t")


def plain_text(*, multiline: bool = False) -> Callable[[str], None]:
    """The validator of every name, title, place and reason people type: no control character (category Cc;
    a multi-line text keeps its line breaks and tabs), no bidirectional control and no other format character
    (Cf), no surrogate, no line or paragraph separator. Such characters are invisible: they hide or reorder
    text, and PostgreSQL refuses NUL."""
    allowed = _LINE_BREAKS if multiline else frozenset()

    def validate(value: str) -> None:
        for char in value:
            if char in allowed or char in _JOINERS:
                continue
            if char in BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
                raise forms.ValidationError(
                    _("This text contains invisible control characters (such as right-to-left marks): "
                      "remove them."), code="control_character")

    return validate
