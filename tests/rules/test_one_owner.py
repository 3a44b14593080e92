"""The rule of the house for business rules: each is decided in one place under events/rules/, and a grep for
its inputs finds that one definition. A second spelling anywhere else in events/ or hyperion/ fails here,
naming the file:line and the owner to call instead."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCES = [path for folder in ("events", "hyperion") for path in sorted((ROOT / folder).rglob("*.py"))]

# (what the rule is, its owner, the spellings that re-derive it). Each pattern is the shape a re-derivation
# takes in this code base: the owner's own definitions are the only lines allowed to match.
RULES = [
    ("published / goes ahead", "events/rules/visibility.py", [
        r"EventStatus\.(APPROVED|CANCELLED)\s*,\s*EventStatus\.(APPROVED|CANCELLED)",  # the published pair
        r"[!=]=\s*EventStatus\.APPROVED\b",  # "goes ahead" tested inline
        r"[!=]=\s*EventStatus\.CANCELLED\b",  # "cancelled" tested inline
    ]),
    ("seats left / full / waitlist position", "events/rules/seats.py", [
        r"capacity\s*-",  # seats left
        r"[<>]=?\s*[\w.]*capacity\b(?!\s*IS)",  # full, overbooked
        r"\bcapacity\s*[<>]=?\s*[^\s=0-9]",  # (a bound on the capacity itself is no seat rule)
        r"func\.count\(Registration\.id\)",  # counting seats or a line
        r"waitlisted\s*\+\s*1",  # a place in line
        r"reserved_seats[\w.]*\s*-|reserved_until\s*[<>]|[<>]=?\s*[\w.]*reserved_until",  # seats held for groups
    ]),
    ("may register now / may still leave", "events/rules/window.py", [
        r"registration_closes_at\s+or\b",  # closing defaults to the start
        r"\bnow\s*[<>]=?\s*[\w.]*registration_",
        r"registration_\w+_at\s*[<>]=?\s*now\b",
    ]),
    ("an offer's deadline", "events/rules/offers.py", [
        r"timedelta\(hours=[\w.]*offer_hours",
        r"offer_expires_at\s*[<>]=?\s*now\b|\bnow\s*[<>]=?\s*[\w.]*offer_expires_at",  # (SQL's <= is the sweeper's)
    ]),
    ("a student's priority opening", "events/rules/priority.py", [
        r"association_id\s+in\s+[\w.]*association_ids",
        r"\b(if|and|or)\b.*\bin\s*\(?[\w.]*priority_(promos|emails)",  # membership tested (not a loop)
        r"(members|promos|emails)_open_at\s*[<>]",
    ]),
    ("a no-show and its delay", "events/rules/attendance.py", [
        r"checked_in_at\.is_\(None\)|checked_in_at\s+is\s+None",  # "did not come"
        r"timedelta\(hours=[\w.]*no_show_delay_hours",
    ]),
    ("what follows a change to a published event (calendar SEQUENCE, banner, messages)",
     "events/notifications/changes.py", [
         r"\bsequence\s*\+=|\bsequence\s*\+\s*1",  # a new calendar version
         r"\bchanged_at\s*=\s*utcnow\(\)",  # the "changed on" banner
     ]),
    ("who may register at all (restricted events)", "events/rules/restrictions.py", [
        r"restricted_to\s*[!=]=",
        r"\bin\s*\(?[\w.]*restricted_(promos|emails)",
    ]),
    ("status transitions / awaiting review", "events/rules/lifecycle.py", [
        r"TRANSITIONS\[",
        r"[!=]=\s*EventStatus\.SUBMITTED\b",  # the approval queue tested inline
    ]),
    ("address verified", "events/rules/accounts.py", [
        r"email_verified_at\s*\.\s*is_(not)?\(",  # in SQL
        r"email_verified_at\s+is\s+(not\s+)?None",  # in Python
        r"email_verified_at\s*[!=]=\s*None",
    ]),
    ("e-mail normalisation", "events/rules/emails.py", [
        r"(?i)\be?mail\w*\b.*\.(lower|casefold)\(\)",  # an address lower-cased by hand
    ]),
]


def _code_lines(path: Path):
    """Lines of code, without comments and docstring lines (a rule described in prose is not a definition)."""
    in_docstring = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        quotes = stripped.count('"""')
        if in_docstring or stripped.startswith('"""'):
            if quotes == 1:
                in_docstring = not in_docstring
            continue
        yield number, line.split("  #")[0]


def second_definitions(owner: str, patterns: list[str], sources=SOURCES, root: Path = ROOT) -> list[str]:
    found = []
    for path in sources:
        relative = path.relative_to(root).as_posix()
        if relative == owner or relative.startswith("events/migrations"):
            continue
        for number, line in _code_lines(path):
            if "CheckConstraint(" in line:  # the schema's own guard of a rule, in SQL text: not a second owner
                continue
            if any(re.search(pattern, line) for pattern in patterns):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize(("rule", "owner", "patterns"), RULES, ids=[rule for rule, _owner, _patterns in RULES])
def test_each_rule_has_one_definition(rule, owner, patterns):
    found = second_definitions(owner, patterns)
    assert not found, (f"'{rule}' is decided in {owner}: call it instead of deciding it again here:\n  "
                       + "\n  ".join(found))


def test_the_rule_catches_a_second_definition(tmp_path):
    """The check itself: each rule's patterns catch a typical re-derivation."""
    samples = {
        "published / goes ahead": "rows = select(Event).where(Event.status.in_((EventStatus.APPROVED, "
                                  "EventStatus.CANCELLED)))\nok = event.status == EventStatus.APPROVED\n"
                                  "gone = row.status == EventStatus.CANCELLED\n",
        "seats left / full / waitlist position": "left = event.capacity - confirmed\n"
                                                 "full = confirmed >= event.capacity\n"
                                                 "held = now < event.reserved_until\n",
        "may register now / may still leave": "closes = event.registration_closes_at or event.starts_at\n"
                                              "opened = now >= event.registration_opens_at\n",
        "status transitions / awaiting review": "sources, target = TRANSITIONS[action]\n"
                                                "queue = select(Event).where(Event.status == EventStatus.SUBMITTED)\n",
        "who may register at all (restricted events)": "if event.restricted_to == 'members':\n"
                                                        "ok = user.promo in event.restricted_promos\n",
        "what follows a change to a published event (calendar SEQUENCE, banner, messages)":
            "event.sequence += 1\nvalues['sequence'] = Event.sequence + 1\nevent.changed_at = utcnow()\n",
        "address verified": "staff = User.is_staff & User.email_verified_at.is_not(None)\n"
                            "if account.email_verified_at is None:\n",
        "e-mail normalisation": "email = form.cleaned_data['email'].strip().lower()\n",
        "an offer's deadline": "expires = now + timedelta(hours=event.offer_hours)\n",
        "a no-show and its delay": "absent = Registration.checked_in_at.is_(None)\n",
        "a student's priority opening": "early = user.promo is not None and user.promo in event.priority_promos\n"
                                        "member = event.association_id in user.association_ids\n",
    }
    (tmp_path / "events").mkdir()
    for rule, owner, patterns in RULES:
        source = tmp_path / "events" / "copy.py"
        source.write_text(samples[rule], encoding="utf-8")
        found = second_definitions(owner, patterns, sources=[source], root=tmp_path)
        assert len(found) == samples[rule].count("\n"), (rule, found)


def test_the_rules_index_names_every_owner():
    # Read from the source: the PostgreSQL passes run under python -OO, which drops docstrings.
    index = ast.get_docstring(ast.parse((ROOT / "events" / "rules" / "__init__.py").read_text(encoding="utf-8")))
    assert index
    for _rule, owner, _patterns in RULES:
        assert Path(owner).stem in index, owner
