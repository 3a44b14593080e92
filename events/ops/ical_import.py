"""Reading an iCalendar file into plain event values for ``manage.py importics``: parsing only, no queries.

Times come out aware and in UTC. All-day events (DATE values) span local midnights of the site's zone,
the end being the midnight after the last day, as the feeds write them; floating times (and times in a
zone nobody knows) are taken in the site's zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation

from events.catalog.categories import CATEGORIES
from events.rules.text import plain_text
from hyperion.db import text_fold

TITLE_MAX = 200  # Event.title
LOCATION_MAX = 200  # Event.location
UID_MAX = 255  # Event.ical_uid
DEFAULT_CATEGORY = "other"


class NotICalendar(ValueError):
    """The bytes are not one iCalendar (VCALENDAR) object."""


@dataclass(frozen=True, slots=True)
class ImportedEvent:
    uid: str
    title: str
    description: str
    location: str
    category: str
    starts_at: datetime
    ends_at: datetime
    all_day: bool
    cancelled: bool


@dataclass(frozen=True, slots=True)
class ParsedCalendar:
    events: list[ImportedEvent]
    # One line per VEVENT left out (or read with an assumption), naming it.
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0


def calendar_parse(data: bytes, *, zone: ZoneInfo) -> ParsedCalendar:
    """The VEVENTs of ``data`` that can become events; the others are counted and named in ``warnings``."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise NotICalendar(_first_line(exc)) from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise NotICalendar("no VCALENDAR in the file")
    categories = _category_names()
    events: list[ImportedEvent] = []
    warnings: list[str] = []
    seen_uids: set[str] = set()
    skipped = 0
    for number, vevent in enumerate(calendar.walk("VEVENT"), 1):
        name = _vevent_name(number, vevent)
        try:
            event, notes = _event_from(vevent, zone=zone, categories=categories)
            if event.uid in seen_uids:
                raise ValueError("its UID appears earlier in the file")
        # icalendar's errors are ValueErrors; OverflowError: a date at the end of the calendar (year 9999).
        except (ValueError, TypeError, OverflowError) as exc:
            warnings.append(f"skipped {name}: {_first_line(exc)}")
            skipped += 1
            continue
        seen_uids.add(event.uid)
        warnings.extend(f"{name}: {note}" for note in notes)
        events.append(event)
    return ParsedCalendar(events=events, warnings=warnings, skipped=skipped)


def _event_from(vevent, *, zone: ZoneInfo, categories: dict[str, str]) -> tuple[ImportedEvent, list[str]]:
    notes: list[str] = []
    uid = _text(vevent, "UID")
    if not uid:
        raise ValueError("no UID")
    if len(uid) > UID_MAX:
        raise ValueError(f"UID longer than {UID_MAX} characters")
    if "DTSTART" not in vevent:
        raise ValueError("no DTSTART")
    if "RRULE" in vevent or "RDATE" in vevent or "RECURRENCE-ID" in vevent:
        # One event per UID here: importing the first date alone would silently drop the others.
        raise ValueError("recurring events (RRULE, RDATE, RECURRENCE-ID) are not imported")
    title = " ".join(_text(vevent, "SUMMARY").split())
    if not title:
        raise ValueError("no SUMMARY (title)")
    start, end = vevent.start, vevent.end  # end: DTEND, or DTSTART + DURATION, or RFC 5545's default
    if isinstance(start, datetime):
        zone_name = getattr(vevent["DTSTART"], "params", {}).get("TZID")
        if start.tzinfo is None and zone_name:
            notes.append(f"unknown time zone {zone_name!r}: times taken in {zone.key}")
        starts_at, ends_at, all_day = _aware(start, zone), _aware(end, zone), False
    else:
        # DTEND of a DATE event is the day after the last one; an equal (sloppy) DTEND means one day.
        after_last = start + timedelta(days=1) if end == start else end
        starts_at, ends_at, all_day = _midnight(start, zone), _midnight(after_last, zone), True
    if ends_at < starts_at:
        raise ValueError("DTEND is before DTSTART")
    _refuse_hidden_characters(vevent)
    return ImportedEvent(
        uid=uid,
        title=title[:TITLE_MAX],
        description=_text(vevent, "DESCRIPTION"),
        location=" ".join(_text(vevent, "LOCATION").split())[:LOCATION_MAX],
        category=_category(vevent, categories),
        starts_at=starts_at,
        ends_at=ends_at,
        all_day=all_day,
        cancelled=_text(vevent, "STATUS").upper() == "CANCELLED",
    ), notes


def _refuse_hidden_characters(vevent) -> None:
    """The rule of every title, place and description typed on the site (events.rules.text), for imports too:
    no control, bidirectional or other invisible format character, which could make a page read otherwise."""
    for name, multiline in (("SUMMARY", False), ("LOCATION", False), ("DESCRIPTION", True)):
        try:
            plain_text(multiline=multiline)(_text(vevent, name))
        except ValidationError:
            raise ValueError(f"{name} contains invisible control or bidirectional characters") from None


def _aware(moment: datetime, zone: ZoneInfo) -> datetime:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)).astimezone(UTC)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _category_names() -> dict[str, str]:
    """Folded slug or label (in every language of the site) -> category slug."""
    names = {text_fold(slug): slug for slug in CATEGORIES}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            names.update({text_fold(str(label)): slug for slug, label in CATEGORIES.items()})
    return names


def _category(vevent, names: dict[str, str]) -> str:
    for value in vevent.categories:
        slug = names.get(text_fold(str(value).strip()))
        if slug is not None:
            return slug
    return DEFAULT_CATEGORY


def _text(vevent, name: str) -> str:
    """A text property, stripped; the first one if the file repeats it."""
    value = vevent.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value or "").strip()


def _vevent_name(number: int, vevent) -> str:
    summary = " ".join(_text(vevent, "SUMMARY").split())[:60]
    uid = _text(vevent, "UID")[:80]
    described = ", ".join(part for part in (f'"{summary}"' if summary else "", f"UID {uid}" if uid else "") if part)
    return f"VEVENT #{number}" + (f" ({described})" if described else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
