"""The attendees' list as a spreadsheet file: CSV that no spreadsheet program runs as a formula."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence

from django.utils.translation import gettext as _

from events import localtime
from events.catalog import presenters
from events.rules.questions import Question
from events.staff.queries import AttendeeRow

# Spreadsheets run a cell that starts with one of these as a formula. A spreadsheet may also split a line on
# another separator than ours (French ones pick ';') and then read a piece of a cell as a cell of its own:
# every piece that would start a cell under any usual separator is neutralised with a leading '.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_AFTER_SEPARATOR = re.compile(r"(^|[,;|\t])([ \"]*)(?=[=+\-@\t\r])")


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return _FORMULA_AFTER_SEPARATOR.sub(lambda match: f"{match.group(1)}{match.group(2)}'", text)


def attendees_csv(rows: Iterable[AttendeeRow], *, questions: Sequence[Question] = (),
                  answers: Mapping[int, Mapping[str, str]] | None = None) -> str:
    """The attendees, a header first, in UTF-8 with a BOM: spreadsheet programs then read accents right. A
    column per registration question asked now, with each attendee's answer."""
    answers = answers or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)  # a separator inside a cell never splits it
    writer.writerow([csv_cell(value) for value in (
        _("Name"), _("E-mail"), _("Promo"), _("Status"), _("Waitlist position"), _("Registered at"),
        _("Checked in at"), *(question.label for question in questions))])
    for row in rows:
        given = answers.get(row.user_id, {})
        writer.writerow([csv_cell(value) for value in (
            row.display_name, row.email, row.promo, presenters.registration_status_label(row.status),
            row.waitlist_position,
            localtime.local(row.queued_at).strftime("%Y-%m-%d %H:%M"),
            localtime.local(row.checked_in_at).strftime("%Y-%m-%d %H:%M") if row.checked_in_at else "",
            *(question.shown(given.get(question.id)) for question in questions))])
    return "\ufeff" + buffer.getvalue()
