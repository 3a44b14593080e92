"""Events as iCalendar (RFC 5545) feeds: rows in, the bytes of a VCALENDAR out. No queries here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta

from django.utils import translation
from django.utils.formats import date_format
from icalendar import STATUS, Calendar, Event

from events.catalog.categories import category_label
from events.feeds.queries import FeedEventRow, FeedRegistrationRow
from events.localtime import local, site_zone
from events.models import RegistrationStatus
from events.rules import visibility

PRODID = "-//Hyperion Events//Event feeds//EN"

EventUrl = Callable[[str], str]  # event slug -> absolute URL of its page


def event_uid(event_id: int) -> str:
    return f"event-{event_id}@hyperion-events"


def calendar_events(rows: Iterable[FeedEventRow], *, name: str, event_url: EventUrl) -> bytes:
    """A public calendar: published events as they are (cancelled ones stay, marked CANCELLED)."""
    vevents = [
        _vevent(row, summary=row.title, status=_event_status(row), last_modified=row.updated_at,
                event_url=event_url)
        for row in rows
    ]
    return _calendar(name, vevents)


def calendar_registrations(rows: Iterable[FeedRegistrationRow], *, name: str, event_url: EventUrl,
                           followed: Iterable[FeedEventRow] = ()) -> bytes:
    """A student's calendar: each event with the student's own state (waitlist position, left, cancelled), and
    the events of the associations the student follows (``followed``: those without a registration)."""
    vevents = [
        _vevent(row.event, summary=registration_summary(row), status=registration_status(row),
                last_modified=max(row.event.updated_at, row.updated_at), event_url=event_url)
        for row in rows
    ]
    vevents += [_vevent(event, summary=event.title, status=_event_status(event), last_modified=event.updated_at,
                        event_url=event_url) for event in followed]
    return _calendar(name, vevents)


def registration_status(row: FeedRegistrationRow) -> STATUS:
    if visibility.is_cancelled(row.event.status) or row.status in (RegistrationStatus.CANCELLED,
                                                                   RegistrationStatus.EXPIRED):
        return STATUS.CANCELLED
    if row.status in (RegistrationStatus.WAITLISTED, RegistrationStatus.ENTERED, RegistrationStatus.OFFERED):
        return STATUS.TENTATIVE
    return STATUS.CONFIRMED


def registration_summary(row: FeedRegistrationRow) -> str:
    if row.status == RegistrationStatus.WAITLISTED and row.waitlist_position is not None:
        return translation.gettext("%(title)s (waitlist #%(position)d)") % {
            "title": row.event.title, "position": row.waitlist_position,
        }
    if row.status == RegistrationStatus.ENTERED:
        return translation.gettext("%(title)s (entered in the draw)") % {"title": row.event.title}
    if row.status == RegistrationStatus.OFFERED and row.offer_expires_at is not None:
        # The feed shows the offer, with its deadline, so that a calendar reminds the student to answer it.
        return translation.gettext("%(title)s (seat offered: accept before %(when)s)") % {
            "title": row.event.title, "when": date_format(local(row.offer_expires_at), "j F Y, H:i")}
    return row.event.title


def _event_status(row: FeedEventRow) -> STATUS:
    return STATUS.CANCELLED if visibility.is_cancelled(row.status) else STATUS.CONFIRMED


def _span(row: FeedEventRow) -> tuple[date, date] | tuple[datetime, datetime]:
    """DTSTART and DTEND: local dates (end exclusive) for an all-day event, Europe/Paris times otherwise."""
    zone = site_zone()
    start, end = row.starts_at.astimezone(zone), row.ends_at.astimezone(zone)
    if not row.all_day:
        return start, end
    last_day = end.date()
    if end.time() == time.min and end > start:
        last_day -= timedelta(days=1)  # an end at midnight closes the day before, it takes no part of its own
    return start.date(), last_day + timedelta(days=1)


def _vevent(row: FeedEventRow, *, summary: str, status: STATUS, last_modified: datetime,
            event_url: EventUrl) -> Event:
    start, end = _span(row)
    return Event.new(
        uid=event_uid(row.id),
        # The last change rather than the time of the request: an unchanged feed keeps the same bytes, so
        # its ETag holds and polling clients get 304s.
        stamp=last_modified,
        last_modified=last_modified,
        sequence=row.sequence,
        start=start,
        end=end,
        summary=summary,
        description=row.description or None,
        location=row.location or None,
        url=event_url(row.slug),
        categories=[category_label(row.category)],
        status=status,
    )


def invitation(row: FeedEventRow, *, cancel: bool, organizer: str, attendee: str, event_url: EventUrl) -> bytes:
    """The .ics of an e-mail (RFC 6047): METHOD:REQUEST adds or updates the event in the recipient's
    calendar, METHOD:CANCEL removes it. Same UID and SEQUENCE as the feeds, so both stay in step."""
    vevent = _vevent(row, summary=row.title, status=STATUS.CANCELLED if cancel else _event_status(row),
                     last_modified=row.updated_at, event_url=event_url)
    vevent.add("organizer", f"mailto:{organizer}")
    vevent.add("attendee", f"mailto:{attendee}", parameters={"ROLE": "REQ-PARTICIPANT", "RSVP": "FALSE"})
    return _calendar(row.title, [vevent], method="CANCEL" if cancel else "REQUEST")


def _calendar(name: str, vevents: list[Event], method: str = "PUBLISH") -> bytes:
    calendar = Calendar()
    calendar.prodid = PRODID
    calendar.version = "2.0"
    calendar.method = method
    # X-WR-CALNAME is not a TEXT value the library escapes: one line, whatever the title held.
    calendar.calendar_name = " ".join(name.split())
    for vevent in vevents:
        calendar.add_component(vevent)
    timed_years = [moment.year for vevent in vevents for moment in (vevent.start, vevent.end)
                   if isinstance(moment, datetime)]
    if timed_years:
        # Transitions for the years the events span only: the library's default (1970-2038) adds ~2 kB to
        # every feed.
        calendar.add_missing_timezones(first_date=date(min(timed_years), 1, 1),
                                       last_date=date(max(timed_years) + 1, 1, 1))
    return calendar.to_ical()
