"""Reads: every SELECT the pages, feeds and commands run. Each takes an AsyncSession first.

Hot paths select the columns a page shows (SQLAlchemy Core rows) rather than whole ORM entities: the ORM's
identity map and instance state cost ~0.5 ms per page for data that is only rendered (perf-notes.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.models import Association, Event, EventStatus, Registration, RegistrationStatus
from hyperion.db import text_fold


@dataclass(frozen=True, slots=True)
class SeatState:
    """Seats of one event: the one place that says how many are left and whether it is full."""

    capacity: int | None
    confirmed: int
    waitlisted: int

    @property
    def unlimited(self) -> bool:
        return self.capacity is None

    @property
    def seats_left(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.confirmed, 0)

    @property
    def is_full(self) -> bool:
        return self.capacity is not None and self.confirmed >= self.capacity


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


@dataclass(frozen=True, slots=True)
class EventPage:
    rows: list[EventRow]
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def _count_of(status: RegistrationStatus):
    return (
        select(func.count(Registration.id))
        .where(Registration.event_id == Event.id, Registration.status == status)
        .correlate(Event)
        .scalar_subquery()
    )


_CONFIRMED = _count_of(RegistrationStatus.CONFIRMED).label("confirmed")
_WAITLISTED = _count_of(RegistrationStatus.WAITLISTED).label("waitlisted")

_EVENT_ROW_COLUMNS = (
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
    _CONFIRMED,
    _WAITLISTED,
)


def _event_row(row) -> EventRow:
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
        seats=SeatState(row.capacity, row.confirmed, row.waitlisted),
    )


def _search_condition(dialect_name: str, text: str):
    if dialect_name == "postgresql":
        # Full text, accents and case ignored: the expression matches the GIN index of the migration.
        document = func.to_tsvector(
            literal_column("'french'"),
            func.hyperion_unaccent(Event.title + " " + Event.description + " " + Event.location),
        )
        return document.op("@@")(
            func.websearch_to_tsquery(literal_column("'french'"), func.hyperion_unaccent(text))
        )
    # SQLite: a substring match on accent- and case-folded text (hyperion_fold, hyperion/db.py).
    pattern = f"%{_fold_like(text)}%"
    folded = func.hyperion_fold(Event.title + " " + Event.description + " " + Event.location)
    return folded.like(pattern, escape="\\")


def _fold_like(text: str) -> str:
    return text_fold(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(statement: Select, filters: EventFilters, *, dialect_name: str, tz) -> Select:
    if filters.association:
        statement = statement.where(Association.slug == filters.association)
    if filters.category:
        statement = statement.where(Event.category == filters.category)
    if filters.date_from:
        start = datetime.combine(filters.date_from, datetime.min.time(), tzinfo=tz)
        statement = statement.where(Event.ends_at >= start)
    if filters.date_to:
        end = datetime.combine(filters.date_to, datetime.max.time(), tzinfo=tz)
        statement = statement.where(Event.starts_at <= end)
    if filters.has_seats:
        seats_remain = _count_of(RegistrationStatus.CONFIRMED) < Event.capacity
        statement = statement.where(or_(Event.capacity.is_(None), seats_remain))
    if filters.query and filters.query.strip():
        statement = statement.where(_search_condition(dialect_name, filters.query.strip()))
    return statement


async def events_upcoming(
    session: AsyncSession, *, now: datetime, filters: EventFilters, page: int = 1, per_page: int = 20, tz=None
) -> EventPage:
    """Published events that have not ended yet, soonest first. One query: a row beyond the page tells
    whether there is a next page, instead of a second COUNT query."""
    statement = (
        select(*_EVENT_ROW_COLUMNS)
        .join(Association, Association.id == Event.association_id)
        .where(Event.status.in_((EventStatus.APPROVED, EventStatus.CANCELLED)), Event.ends_at >= now)
        .order_by(Event.starts_at, Event.id)
        .limit(per_page + 1)
        .offset((page - 1) * per_page)
    )
    statement = _filtered(statement, filters, dialect_name=session.bind.dialect.name, tz=tz)
    rows = [_event_row(row) for row in (await session.execute(statement)).all()]
    return EventPage(rows=rows[:per_page], page=page, has_next=len(rows) > per_page)


async def associations_all(session: AsyncSession) -> list[tuple[str, str]]:
    """(slug, name) of every association, by name: the filter menu."""
    result = await session.execute(select(Association.slug, Association.name).order_by(Association.name))
    return [(row.slug, row.name) for row in result]


async def event_counts(session: AsyncSession) -> dict[str, int]:
    """How many rows each main table holds (commands report them)."""
    from events.models import User

    counts = {}
    for name, model in (("users", User), ("associations", Association), ("events", Event),
                        ("registrations", Registration)):
        counts[name] = (await session.execute(select(func.count()).select_from(model))).scalar_one()
    return counts


