"""Text search, the one rule for every search box (public list, management lists): case, accents and
ligatures are ignored, and every word typed must appear, in any order ("crepes jeux" finds "Soirée jeux et
crêpes", "oenologie" finds "Œnologie").

PostgreSQL's public list uses full-text search instead (stemmed, on the GIN index of the first migration),
which follows the same rule for whole words; the management lists, which need substrings of names and
e-mail addresses, use the expressions below on both databases.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, literal, true
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import BindParameter

MAX_WORDS = 8  # more words than this narrow nothing a person types, and each one is a LIKE per row


def query_words(query: str) -> list[str]:
    """The words of a query as typed, at most MAX_WORDS of them."""
    return query.split()[:MAX_WORDS]


def _like_escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _folded(expression) -> ColumnElement:
    """PostgreSQL's spelling of hyperion.db.text_fold (hyperion_unaccent is made by the first migration)."""
    return func.lower(func.hyperion_unaccent(expression))


def words_in(document: ColumnElement | InstrumentedAttribute[str], query: str | BindParameter, *,
             dialect_name: str) -> ColumnElement:
    """True where every word of ``query`` appears in ``document``, folded.

    On SQLite ``query`` may be a bound parameter (the statement is then built once: hyperion_words_in splits
    it); on PostgreSQL it is the text, one LIKE per word."""
    if dialect_name != "postgresql":
        return func.hyperion_words_in(document, query) == 1
    if not isinstance(query, str):
        raise TypeError("on PostgreSQL the query's words build one condition each: pass the text")
    words = query_words(query)
    if not words:
        return true()
    folded_document = _folded(document)
    return and_(*(
        folded_document.like(literal("%") + _folded(literal(_like_escaped(word))) + literal("%"), escape="\\")
        for word in words
    ))
