"""The site's time zone: every "which day, what local time" question (pages, e-mails, feeds, imports, series)
asks here, so that a page and its e-mail never disagree on a date."""

from __future__ import annotations

from datetime import date, datetime, time
from functools import cache
from zoneinfo import ZoneInfo

from django.conf import settings


@cache
def site_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def local(moment: datetime) -> datetime:
    return moment.astimezone(site_zone())


def day_start(day: date) -> datetime:
    """Midnight of a local day, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=site_zone())
