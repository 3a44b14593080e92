"""Turning rows into what templates show: local times, labels, groups. Pure functions, no queries.

Dates are formatted here in Python, once per row, rather than through template filters (Django's ``|date``
on 20 rows was most of a millisecond, measured here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from django.http import QueryDict
from django.utils import formats, translation
from markupsafe import Markup, escape

from events.catalog import share
from events.catalog.categories import category_label
from events.catalog.queries import EventDetail, EventRow
from events.localtime import local
from events.rules import attendance, priority, restrictions, seats, visibility, window
from events.rules.seats import SeatState
from hyperion.images import ImageRef


@lru_cache(maxsize=4096)
def _date_label(language: str | None, value: date, offset, format_string: str) -> str:
    return formats.date_format(value, format_string)


def date_format(value: date, format_string: str) -> str:
    """Django's date_format in the active language, remembered: a page's dates fall on a few hundred days,
    and each fresh formatting costs ~60 µs (format lookups and translated names). Aware datetimes that are
    the same instant compare equal whatever their zone, so the key holds the UTC offset too: equal instant
    and equal offset means equal wall-clock fields."""
    offset = value.utcoffset() if isinstance(value, datetime) else None
    return _date_label(translation.get_language(), value, offset, format_string)


def query_without_page(query: QueryDict) -> str:
    """The current filters as a query string, for the pager's links."""
    copy = query.copy()
    copy.pop("page", None)
    return copy.urlencode()


def page_number(raw: str | None) -> int:
    try:
        number = int(raw or 1)
    except ValueError:
        return 1
    return min(max(number, 1), 10_000)


@dataclass(frozen=True, slots=True)
class DayGroup:
    day: date
    label: str
    events: list[EventCard]


@dataclass(frozen=True, slots=True)
class EventCard:
    row: EventRow
    day_label: str  # every list shows the day; lists grouped by day show it once per group instead
    time_label: str
    category_label: str
    seats_label: str
    is_full: bool
    is_cancelled: bool
    is_over: bool
    restriction_badge: str = ""  # "Members only", "Promo 2027 only"…: an event not open to everyone


def time_range_label(starts_at: datetime, ends_at: datetime, all_day: bool) -> str:
    start, end = local(starts_at), local(ends_at)
    if all_day:
        if start.date() == end.date():
            return translation.gettext("All day")
        return translation.gettext("Until %(day)s") % {"day": date_format(end.date(), "j F")}
    if start.date() == end.date():
        return f"{start:%H:%M} – {end:%H:%M}"
    return f"{start:%H:%M} – {date_format(end.date(), 'j F')} {end:%H:%M}"


def day_label(moment: datetime, *, today: date) -> str:
    """The local day of ``moment`` for a list of events: the year only when it is not this year's."""
    day = local(moment).date()
    return date_format(day, "l j F" if day.year == today.year else "l j F Y")


def _seats_text(seats: SeatState, *, is_over: bool = False) -> str:
    if is_over:  # its seats no longer matter: say that it took place
        return translation.gettext("Event over")
    if seats.unlimited:
        return translation.gettext("Open to all")
    if seats.is_full:
        return translation.gettext("Full, waitlist open")
    return translation.ngettext("%(n)d seat left", "%(n)d seats left", seats.seats_left) % {"n": seats.seats_left}


def seats_counter_label(seats: SeatState, *, cancelled: bool = False, is_over: bool = False) -> str:
    """The event page's seat counter in the active language. The page shows it, and each value of the
    page's live stream carries it anew in the page's language (static/js/live-seats.js shows it as is):
    plural forms and wording come from the catalog, never from the script."""
    if cancelled:
        return translation.gettext("Cancelled")
    if is_over:
        return translation.gettext("Event over")
    if seats.unlimited:
        return translation.gettext("Unlimited")
    if seats.is_full:
        text = translation.ngettext("Full (%(capacity)d seat), waitlist open", "Full (%(capacity)d seats), "
                                    "waitlist open", seats.capacity) % {"capacity": seats.capacity}
    else:
        text = translation.ngettext("%(left)d seat left of %(capacity)d", "%(left)d seats left of %(capacity)d",
                                    seats.seats_left) % {"left": seats.seats_left, "capacity": seats.capacity}
    if seats.waitlisted:
        text += " · " + translation.ngettext("%(num)d on the waitlist", "%(num)d on the waitlist",
                                             seats.waitlisted) % {"num": seats.waitlisted}
    return text


def event_card(row: EventRow, *, now: datetime | None = None) -> EventCard:
    from events.models import utcnow

    now = now or utcnow()
    is_over = row.ends_at <= now
    return EventCard(
        row=row,
        day_label=day_label(row.starts_at, today=local(now).date()),
        time_label=time_range_label(row.starts_at, row.ends_at, row.all_day),
        category_label=category_label(row.category),
        seats_label=_seats_text(row.seats, is_over=is_over),
        is_full=row.seats.is_full and not is_over,
        is_cancelled=visibility.is_cancelled(row.status),
        is_over=is_over,
        restriction_badge=restrictions.badge(row),
    )


def group_by_day(rows: list[EventRow], *, now: datetime) -> list[DayGroup]:
    groups: list[DayGroup] = []
    for row in rows:
        day = local(row.starts_at).date()
        if not groups or groups[-1].day != day:
            groups.append(DayGroup(day=day, label=date_format(day, "l j F Y"), events=[]))
        groups[-1].events.append(event_card(row, now=now))
    return groups


def description_html(text: str) -> Markup:
    """User text as paragraphs: every character escaped first, so no markup a user typed survives."""
    paragraphs = [part.strip() for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]
    # Markup.format and Markup.join escape what they are given: only our <p> and <br> are markup.
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>").join(escape(line) for line in paragraph.split("\n")))
        for paragraph in paragraphs
    )


def clock_label(moment: datetime) -> str:
    """The time of day, local ("20:14"): a moment of today, as the door sees it."""
    return date_format(local(moment), "H:i")


def moment_label(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return date_format(local(moment), "l j F Y, H:i")


@dataclass(frozen=True, slots=True)
class EventPage:
    """What the event page shows, including the viewer's state and which buttons apply."""

    detail: EventDetail
    when_label: str
    time_label: str
    category_label: str
    seats_counter_label: str
    description_html: Markup
    registration_open: bool
    unregistration_open: bool
    registration_window_label: str
    lottery_label: str  # how this event opens, when it opens by lottery ("" for first come)
    lottery_open: bool  # an ask now is an entry in the draw
    opens_soon_at: datetime | None  # registration opens within a day: the page counts down to it
    is_cancelled: bool
    is_over: bool
    changed_label: str  # for registered students: when the date, place or seats last changed
    offer_deadline_label: str = ""  # a seat offered to the viewer: until when they may accept it
    priority_label: str = ""  # who registers before everyone else, and when ("" when nobody does)
    my_priority_label: str = ""  # registration opens earlier for the viewer: when, and as a member of which group
    no_show_label: str = ""  # registration opens later for the viewer after a no-show: why, and until when
    reserve_label: str = ""  # seats held for the priority groups: how many, until when
    share_description: str = ""  # the one line a shared link shows (when, where, who)
    structured_data: Markup = Markup("")  # schema.org Event (JSON-LD), for search engines and chat apps
    full_for_viewer: bool = False  # no seat the viewer may take (all taken, or only held ones and not in a group)
    restriction_label: str = ""  # who may register, when not everyone (events/rules/restrictions.py)
    restriction_badge: str = ""  # the same, in a few words beside the title (as on the cards)
    admitted: bool = True  # the viewer may register (a visitor: only for an event open to everyone)
    poster: ImageRef | None = None  # shown large at the top of the page
    share_image: ImageRef | None = None  # in share previews: the poster, else the association's logo
    share_image_alt: str = ""


def event_page(detail: EventDetail, *, now: datetime, student: priority.Student | None = None,
               no_show: attendance.NoShow | None = None) -> EventPage:
    """The event page for ``student`` (None: a visitor, or a page that does not depend on who asks): the
    registration window is theirs (a priority group may open it earlier for them, their latest no-show at the
    association's events, ``no_show``, later)."""

    early = priority.opening_for(detail, student)
    opens_at = attendance.delayed_opening(early, no_show, delay_hours=detail.no_show_delay_hours,
                                          penalty_days=detail.no_show_penalty_days)
    closes = window.registration_closes_at(detail)
    if window.registration_not_yet_open(detail, now, opens_at):
        window_label = translation.gettext("Registration opens on %(when)s.") % {
            "when": moment_label(opens_at)}
    elif now < closes:
        window_label = translation.gettext("Registration closes on %(when)s.") % {"when": moment_label(closes)}
    else:
        window_label = translation.gettext("Registration is closed.")
    lottery_closes = window.lottery_closes_at(detail)
    if lottery_closes is None:
        lottery_label = ""
    elif detail.lottery_drawn_at is not None:
        lottery_label = translation.gettext("The seats were drawn at random on %(when)s, among the students "
                                            "who asked in the first minutes; later asks join the waitlist.") % {
            "when": moment_label(detail.lottery_drawn_at)}
    else:
        lottery_label = translation.gettext(
            "Opening by lottery: every student who asks between %(opens)s and %(closes)s gets an entry, and the "
            "seats are drawn at random when that window closes. When you ask in the window does not matter.") % {
            "opens": moment_label(detail.registration_opens_at), "closes": moment_label(lottery_closes)}
    start = local(detail.starts_at)
    is_over = detail.ends_at <= now
    when_label, time_label = date_format(start.date(), "l j F Y"), time_range_label(detail.starts_at, detail.ends_at,
                                                                                     detail.all_day)
    # What a shared link shows: only a visitor's render carries it (templates/base.html).
    share_description = share.event_description(detail, when=when_label, time=time_label) if student is None else ""
    shown = share.event_image(detail)
    return EventPage(
        detail=detail,
        when_label=when_label,
        time_label=time_label,
        category_label=category_label(detail.category),
        seats_counter_label=seats_counter_label(detail.seats, is_over=is_over),
        description_html=description_html(detail.description),
        registration_open=window.registration_is_open(detail, now, opens_at),
        unregistration_open=window.unregistration_is_open(detail, now),
        registration_window_label=window_label,
        lottery_label=lottery_label,
        lottery_open=window.in_lottery_window(detail, now),
        opens_soon_at=opens_at if opens_at is not None and window.registration_not_yet_open(detail, now, opens_at)
        and opens_at - now <= timedelta(days=1) and visibility.goes_ahead(detail.status) else None,
        is_cancelled=visibility.is_cancelled(detail.status),
        is_over=is_over,
        changed_label=moment_label(detail.changed_at)
        if detail.changed_at and detail.mine and detail.mine.status != "cancelled" else "",
        offer_deadline_label=moment_label(detail.mine.offer_expires_at)
        if detail.mine and detail.mine.status == "offered" else "",
        priority_label=priority_label(detail, detail.association_name)
        if window.registration_not_yet_open(detail, now) or seats.reserve_holds(detail, now) else "",
        my_priority_label=translation.gettext(
            "Priority opening: as %(group)s, you may register from %(when)s, before everyone else.") % {
            "group": _group_label(detail, priority.groups_of(detail, student)[0][0]), "when": moment_label(opens_at)}
        if early != detail.registration_opens_at and opens_at == early
        and window.registration_not_yet_open(detail, now) else "",
        no_show_label=_no_show_label(detail, no_show) if opens_at != early else "",
        reserve_label=translation.ngettext(
            "%(num)d of the seats is held for them until %(when)s.",
            "%(num)d of the seats are held for them until %(when)s.", detail.reserved_seats or 0) % {
            "num": detail.reserved_seats, "when": moment_label(detail.reserved_until)}
        if seats.reserve_holds(detail, now) else "",
        share_description=share_description,
        structured_data=share.event_structured_data(detail, description=share_description)
        if student is None else Markup(""),
        full_for_viewer=SeatState(detail.seats.capacity, detail.seats.taken, detail.seats.waitlisted,
                                  seats.held_seats(detail, detail.reserve_taken, now)
                                  ).full_for(in_group=bool(priority.groups_of(detail, student))),
        restriction_label=restrictions.label(detail, detail.association_name),
        restriction_badge=restrictions.badge(detail),
        admitted=restrictions.admits(detail, student),
        poster=ImageRef.parse(detail.poster),
        share_image=shown[0], share_image_alt=shown[1],
    )


def _no_show_label(detail: EventDetail, no_show: attendance.NoShow | None) -> str:
    """Why registration opens later for this student, and until when (a penalty is told, with its reason)."""
    if no_show is None:
        return ""
    return translation.ngettext(
        "You held a seat at '%(title)s' (%(when)s), where attendance was taken, and did not come: until %(end)s, "
        "registration for the events of %(association)s opens %(hours)d hour later for you.",
        "You held a seat at '%(title)s' (%(when)s), where attendance was taken, and did not come: until %(end)s, "
        "registration for the events of %(association)s opens %(hours)d hours later for you.",
        detail.no_show_delay_hours or 0) % {
        "title": no_show.event_title, "when": moment_label(no_show.event_ends_at),
        "end": moment_label(attendance.penalty_ends_at(no_show, detail.no_show_penalty_days)),
        "association": detail.association_name, "hours": detail.no_show_delay_hours}


def _group_label(detail: EventDetail, group: str) -> str:
    if group == priority.MEMBERS:
        return translation.gettext("a member of %(association)s") % {"association": detail.association_name}
    if group == priority.PROMO:
        return translation.gettext("a student of a promo with priority")
    return translation.gettext("a student on the organisers' list")


def priority_label(detail: priority.Prioritised, association_name: str) -> str:
    """Who registers before everyone else, told to everyone (a fair opening is a transparent one); "" when
    nobody does."""
    groups = []
    if detail.members_open_at is not None:
        groups.append(translation.gettext("members of %(association)s from %(when)s") % {
            "association": association_name, "when": moment_label(detail.members_open_at)})
    if detail.promos_open_at is not None and detail.priority_promos:
        groups.append(translation.gettext("promos %(promos)s from %(when)s") % {
            "promos": ", ".join(str(promo) for promo in detail.priority_promos),
            "when": moment_label(detail.promos_open_at)})
    if detail.emails_open_at is not None and detail.priority_emails:
        groups.append(translation.gettext("students on the organisers' list from %(when)s") % {
            "when": moment_label(detail.emails_open_at)})
    if not groups or not priority.has_priority_openings(detail):
        return ""
    return translation.gettext("Priority openings: %(groups)s; then everyone.") % {"groups": "; ".join(groups)}


def registration_status_label(status) -> str:
    """A registration's state as people read it (My events, the attendees' CSV)."""
    from events.models import RegistrationStatus

    return {
        RegistrationStatus.CONFIRMED: translation.gettext("Confirmed"),
        RegistrationStatus.WAITLISTED: translation.gettext("Waitlisted"),
        RegistrationStatus.CANCELLED: translation.gettext("Cancelled (you left)"),
        RegistrationStatus.ENTERED: translation.gettext("Entered in the draw"),
        RegistrationStatus.OFFERED: translation.gettext("Seat offered: accept it"),
        RegistrationStatus.EXPIRED: translation.gettext("Offer expired"),
    }[status]
