"""Reads of the catalog: the lists, search, calendar, event and association pages. Each takes a session first.

Hot paths select the columns a page shows (SQLAlchemy Core rows) rather than whole ORM entities: the ORM's
identity map and instance state cost ~0.5 ms per page for data that is only rendered.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Integer, Select, bindparam, func, literal_column, select
from sqlalchemy.orm import aliased

from events.catalog import search
from events.models import (
    Association,
    Event,
    EventStatus,
    Registration,
    RegistrationStatus,
    User,
)
from events.rules import visibility
from events.rules.seats import (
    SEAT_HOLDERS,
    TAKEN_COUNT,
    WAITLISTED_COUNT,
    SeatState,
    count_of,
    has_seat_left,
    waitlist_position_of,
)
from hyperion import db
from hyperion.images import ImageRef


@dataclass(frozen=True, slots=True)
class EventFilters:
    association: str | None = None
    category: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    has_seats: bool = False
    query: str | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    slug: str
    title: str
    category: str
    location: str
    starts_at: datetime
    ends_at: datetime
    all_day: bool
    status: EventStatus
    association_name: str
    association_slug: str
    seats: SeatState
    image: ImageRef | None = None  # its poster, else its association's logo (lists show it small)
    restricted_to: str = "everyone"  # who may register (events/rules/restrictions.py: the cards' badge)
    restricted_promos: list[int] | None = None


@dataclass(frozen=True, slots=True)
class EventPage:
    rows: list[EventRow]
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


EVENT_ROW_COLUMNS = (
    Event.id,
    Event.slug,
    Event.title,
    Event.category,
    Event.location,
    Event.starts_at,
    Event.ends_at,
    Event.all_day,
    Event.status,
    Event.capacity,
    Association.name.label("association_name"),
    Association.slug.label("association_slug"),
    TAKEN_COUNT,
    WAITLISTED_COUNT,
    func.coalesce(Event.poster, Association.logo).label("image"),
    Event.restricted_to,
    Event.restricted_promos,
)


def event_row(row) -> EventRow:
    return EventRow(
        id=row.id,
        slug=row.slug,
        title=row.title,
        category=row.category,
        location=row.location,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        all_day=row.all_day,
        status=row.status,
        association_name=row.association_name,
        association_slug=row.association_slug,
        seats=SeatState(row.capacity, row.taken, row.waitlisted),
        image=ImageRef.parse(row.image),
        restricted_to=row.restricted_to,
        restricted_promos=row.restricted_promos,
    )


def _search_condition(dialect_name: str):
    if dialect_name == "postgresql":
        # Full text, accents and case ignored: the expression matches the GIN index of the migration.
        document = func.to_tsvector(
            literal_column("'french'"),
            func.hyperion_unaccent(Event.title + " " + Event.description + " " + Event.location),
        )
        return document.op("@@")(
            func.websearch_to_tsquery(literal_column("'french'"), func.hyperion_unaccent(bindparam("query")))
        )
    # SQLite: every word of the query in the folded text (events/search.py), the statement built once.
    return search.words_in(Event.title + " " + Event.description + " " + Event.location, bindparam("query"),
                           dialect_name=dialect_name)


def _upcoming_statement(shape: tuple[bool, ...], dialect_name: str) -> Select:
    """The list query for one combination of filters, with bound parameters for every value."""
    has_association, has_category, has_from, has_to, has_seats, has_query, has_members = shape
    statement = (
        select(*EVENT_ROW_COLUMNS)
        .join(Association, Association.id == Event.association_id)
        .where(_listed(has_members), Event.ends_at >= bindparam("now"))
        .order_by(Event.starts_at, Event.id)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    if has_association:
        statement = statement.where(Association.slug == bindparam("association"))
    if has_category:
        statement = statement.where(Event.category == bindparam("category"))
    if has_from:
        statement = statement.where(Event.ends_at >= bindparam("date_from"))
    if has_to:
        statement = statement.where(Event.starts_at <= bindparam("date_to"))
    if has_seats:  # a cancelled event has no seat to offer, whatever its count says
        statement = statement.where(visibility.going_ahead(), has_seat_left())
    if has_query:
        statement = statement.where(_search_condition(dialect_name))
    return statement


def _listed(has_members: bool):
    """Listed, or also the members' events of the associations bound as ``member_of`` (catalog/members.py)."""
    return visibility.listed_for(bindparam("member_of", expanding=True)) if has_members else visibility.listed()


# Built once per shape and reused: building a SELECT costs more CPU than running it.
_UPCOMING_STATEMENTS: dict[tuple, Select] = {}


async def events_upcoming(
    session: db.Reader, *, now: datetime, filters: EventFilters, page: int = 1, per_page: int = 20, tz=None,
    member_of: Collection[int] = (),
) -> EventPage:
    """Listed events (and the members' events of ``member_of``) that have not ended yet, soonest first. One
    query: a row beyond the page tells whether there is a next page, instead of a second COUNT query."""
    query = (filters.query or "").strip()
    shape = (bool(filters.association), bool(filters.category), bool(filters.date_from), bool(filters.date_to),
             filters.has_seats, bool(query), bool(member_of))
    dialect_name = db.dialect_name(session)
    statement = _UPCOMING_STATEMENTS.get((shape, dialect_name))
    if statement is None:
        statement = _UPCOMING_STATEMENTS.setdefault((shape, dialect_name), _upcoming_statement(shape, dialect_name))
    params = {"now": now, "limit": per_page + 1, "offset": (page - 1) * per_page,
              "association": filters.association, "category": filters.category, "member_of": list(member_of)}
    if filters.date_from:
        params["date_from"] = datetime.combine(filters.date_from, datetime.min.time(), tzinfo=tz)
    if filters.date_to:
        params["date_to"] = datetime.combine(filters.date_to, datetime.max.time(), tzinfo=tz)
    if query:
        params["query"] = query
    rows = [event_row(row) for row in (await session.execute(statement, params)).all()]
    return EventPage(rows=rows[:per_page], page=page, has_next=len(rows) > per_page)


@dataclass(frozen=True, slots=True)
class MyState:
    """The viewer's registration for one event."""

    registration_id: int
    status: RegistrationStatus
    waitlist_position: int | None
    offer_expires_at: datetime | None = None  # a seat offered: until when it may be accepted (or when it lapsed)


@dataclass(frozen=True, slots=True)
class EventDetail:
    id: int
    slug: str
    title: str
    description: str
    category: str
    location: str
    starts_at: datetime
    ends_at: datetime
    all_day: bool
    status: EventStatus
    decision_reason: str
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    unregistration_closes_at: datetime | None
    lottery_minutes: int | None
    lottery_drawn_at: datetime | None
    members_open_at: datetime | None
    promos_open_at: datetime | None
    priority_promos: list[int] | None
    emails_open_at: datetime | None
    priority_emails: list[str] | None
    reserved_seats: int | None
    reserved_until: datetime | None
    updated_at: datetime
    changed_at: datetime | None
    association_id: int
    association_name: str
    association_slug: str
    seats: SeatState
    mine: MyState | None
    # The association's no-show delay (events/rules/attendance.py; None: it has none) and how long it lasts.
    no_show_delay_hours: int | None = None
    no_show_penalty_days: int = 30
    reserve_taken: int = 0  # seats taken among those held for the priority groups
    # Registration questions as stored (events/rules/questions.py reads them) and their answers' deadline.
    questions: list[dict] = field(default_factory=list)
    answers_close_at: datetime | None = None
    # Who may register, and whether a members' event is hidden from others (events/rules/restrictions.py).
    restricted_to: str = "everyone"
    restricted_promos: list[int] | None = None
    restricted_emails: list[str] | None = None
    hidden_from_others: bool = False
    # Its poster and its association's logo (stored images' keys: hyperion/images.py) with their text alternatives.
    poster: str | None = None
    poster_alt: str = ""
    logo: str | None = None
    logo_alt: str = ""

    @property
    def is_published(self) -> bool:
        return visibility.is_published(self.status)


_MINE = aliased(Registration)


_EVENT_DETAIL = (
    select(
        Event.id, Event.slug, Event.title, Event.description, Event.category, Event.location,
        Event.starts_at, Event.ends_at, Event.all_day, Event.status, Event.decision_reason,
        Event.registration_opens_at, Event.registration_closes_at, Event.unregistration_closes_at,
        Event.lottery_minutes, Event.lottery_drawn_at, Event.members_open_at, Event.promos_open_at,
        Event.priority_promos, Event.emails_open_at, Event.priority_emails, Event.reserved_seats, Event.reserved_until,
        count_of(SEAT_HOLDERS, from_reserve=True).label("reserve_taken"),
        Event.updated_at, Event.changed_at, Event.capacity, Event.association_id,
        Association.name.label("association_name"), Association.slug.label("association_slug"),
        Association.no_show_delay_hours, Association.no_show_penalty_days, Event.questions, Event.answers_close_at,
        Event.restricted_to, Event.restricted_promos, Event.restricted_emails, Event.hidden_from_others,
        Event.poster, Event.poster_alt, Association.logo, Association.logo_alt,
        TAKEN_COUNT, WAITLISTED_COUNT,
        _MINE.id.label("mine_id"), _MINE.status.label("mine_status"),
        waitlist_position_of(_MINE).label("mine_position"), _MINE.offer_expires_at.label("mine_offer_expires_at"),
    )
    .join(Association, Association.id == Event.association_id)
    .outerjoin(_MINE, (_MINE.event_id == Event.id) & (_MINE.user_id == bindparam("viewer_id")))
    .where(Event.slug == bindparam("slug"))
)


async def event_detail(session: db.Reader, *, slug: str, viewer_id: int | None) -> EventDetail | None:
    """One event with its seats and the viewer's own registration: one query, built once."""
    statement, params = _EVENT_DETAIL, {"slug": slug, "viewer_id": viewer_id or 0}
    row = (await session.execute(statement, params)).first()
    if row is None:
        return None
    state = None
    if row.mine_id is not None:
        position = row.mine_position if row.mine_status == RegistrationStatus.WAITLISTED else None
        state = MyState(row.mine_id, row.mine_status, position, row.mine_offer_expires_at)
    return EventDetail(
        id=row.id, slug=row.slug, title=row.title, description=row.description, category=row.category,
        location=row.location, starts_at=row.starts_at, ends_at=row.ends_at, all_day=row.all_day,
        status=row.status, decision_reason=row.decision_reason,
        registration_opens_at=row.registration_opens_at, registration_closes_at=row.registration_closes_at,
        unregistration_closes_at=row.unregistration_closes_at, lottery_minutes=row.lottery_minutes,
        lottery_drawn_at=row.lottery_drawn_at, members_open_at=row.members_open_at,
        promos_open_at=row.promos_open_at, priority_promos=row.priority_promos, emails_open_at=row.emails_open_at,
        priority_emails=row.priority_emails, reserved_seats=row.reserved_seats, reserved_until=row.reserved_until,
        reserve_taken=row.reserve_taken, updated_at=row.updated_at,
        changed_at=row.changed_at,
        association_id=row.association_id, association_name=row.association_name,
        association_slug=row.association_slug, seats=SeatState(row.capacity, row.taken, row.waitlisted),
        mine=state, no_show_delay_hours=row.no_show_delay_hours, no_show_penalty_days=row.no_show_penalty_days,
        questions=row.questions or [], answers_close_at=row.answers_close_at, restricted_to=row.restricted_to,
        restricted_promos=row.restricted_promos, restricted_emails=row.restricted_emails,
        hidden_from_others=row.hidden_from_others, poster=row.poster, poster_alt=row.poster_alt, logo=row.logo,
        logo_alt=row.logo_alt,
    )


@dataclass(frozen=True, slots=True)
class AssociationPage:
    id: int
    slug: str
    name: str
    description: str
    upcoming: list[EventRow]
    past: list[EventRow]
    logo: ImageRef | None = None
    logo_alt: str = ""


async def association_page(session: db.Reader, *, slug: str, now: datetime,
                           member_of: Collection[int] = ()) -> AssociationPage | None:
    """The association and its published events; its members (``member_of``: the viewer's associations) also see
    the events it keeps to them."""
    association = (await session.execute(
        select(Association.id, Association.slug, Association.name, Association.description, Association.logo,
               Association.logo_alt)
        .where(Association.slug == slug))).first()
    if association is None:
        return None
    base = (
        select(*EVENT_ROW_COLUMNS)
        .join(Association, Association.id == Event.association_id)
        .where(Event.association_id == association.id,
               visibility.listed_for(member_of) if association.id in member_of else visibility.listed())
    )
    upcoming = await session.execute(base.where(Event.ends_at >= now).order_by(Event.starts_at).limit(50))
    past = await session.execute(base.where(Event.ends_at < now).order_by(Event.starts_at.desc()).limit(20))
    return AssociationPage(
        id=association.id, slug=association.slug, name=association.name, description=association.description,
        upcoming=[event_row(row) for row in upcoming], past=[event_row(row) for row in past],
        logo=ImageRef.parse(association.logo), logo_alt=association.logo_alt,
    )


async def events_between(session: db.Reader, *, start: datetime, end: datetime,
                         member_of: Collection[int] = ()) -> list[EventRow]:
    """Listed events (and the members' events of ``member_of``) that overlap [start, end): the calendar's month
    or week."""
    statement = (
        select(*EVENT_ROW_COLUMNS)
        .join(Association, Association.id == Event.association_id)
        .where(visibility.listed_for(member_of) if member_of else visibility.listed(),
               Event.starts_at < end, Event.ends_at >= start)
        .order_by(Event.starts_at, Event.id)
        .limit(1000)
    )
    return [event_row(row) for row in await session.execute(statement)]


async def associations_all(session: db.Reader) -> list[tuple[str, str]]:
    """(slug, name) of every association, by name: the filter menu."""
    result = await session.execute(select(Association.slug, Association.name).order_by(Association.name))
    return [(row.slug, row.name) for row in result]


async def event_counts(session: db.Reader) -> dict[str, int]:
    """How many rows each main table holds (commands report them)."""
    counts = {}
    for name, model in (("users", User), ("associations", Association), ("events", Event),
                        ("registrations", Registration)):
        counts[name] = (await session.execute(select(func.count()).select_from(model))).scalar_one()
    return counts
