"""The dates of a recurring series: the same wall-clock time in the site's zone (Europe/Paris) every N weeks,
whatever daylight saving time does in between, each occurrence as long as the first.

Around a change of time a wall-clock time may not exist (spring forward: 02:30 is skipped) or happen twice
(fall back: 02:30 comes round again). The site never guesses (the event form refuses such a time too): a
series with such an occurrence is refused, naming it, so that the editor picks another time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _


class OccurrenceTimeInvalid(ValueError):
    """One occurrence falls at a wall-clock time that does not exist or is ambiguous; ``str()`` says which."""


@dataclass(frozen=True, slots=True)
class Occurrence:
    starts_at: datetime  # aware, in UTC
    ends_at: datetime
    weeks: int  # after the first occurrence: the series' other dates (registration window) move as much


def _wall_clock(naive: datetime, zone: ZoneInfo) -> datetime | None:
    """The one instant that ``naive`` names in ``zone``, in UTC; None when it names none or two."""
    instants = {naive.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
    if len(instants) != 1:
        return None  # two instants: the hour that happens twice
    (instant,) = instants
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        return None  # the hour that is skipped
    return instant


def local_weeks_later(moment: datetime, weeks: int, zone: ZoneInfo) -> datetime:
    """``moment`` moved by ``weeks`` weeks of the calendar, at the same wall-clock time in ``zone``."""
    naive = moment.astimezone(zone).replace(tzinfo=None) + timedelta(weeks=weeks)
    instant = _wall_clock(naive, zone)
    if instant is None:
        raise OccurrenceTimeInvalid(
            _("On %(day)s, %(time)s does not exist or happens twice because of the change of time: choose "
              "another time for the series.") % {"day": naive.date().isoformat(), "time": f"{naive:%H:%M}"})
    return instant


def occurrences(*, starts_at: datetime, ends_at: datetime, every_weeks: int, until: date,
                zone: ZoneInfo) -> list[Occurrence]:
    """Every occurrence from the first (``starts_at``/``ends_at``) to the last that starts on or before
    ``until`` (a local date). Raises OccurrenceTimeInvalid for an occurrence whose start does not exist or is
    ambiguous. The duration is kept in real time, so no occurrence is cut short or stretched by an hour."""
    duration = ends_at.astimezone(UTC) - starts_at.astimezone(UTC)
    found = []
    weeks = 0
    while (starts_at.astimezone(zone) + timedelta(weeks=weeks)).date() <= until:
        start = local_weeks_later(starts_at, weeks, zone)
        found.append(Occurrence(start, start + duration, weeks))
        weeks += every_weeks
    return found
