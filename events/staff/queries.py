"""Reads of the management area: event lists, approval queue, attendees, members, users, audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.catalog import search
from events.models import (
    Association,
    AuditEntry,
    Event,
    EventStatus,
    Membership,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    User,
)
from events.rules import lifecycle
from events.rules.accounts import verified
from events.rules.emails import normalize_email
from events.rules.permissions import Actor
from events.rules.seats import LINE_ORDER, TAKEN_COUNT, WAITLISTED_COUNT, SeatState, count_of, waitlist_position_of
from hyperion import db

PER_PAGE = 25


async def actor_for(session: db.Reader, *, user) -> Actor:
    # Until the address is confirmed an account holds no role (see events.accounts.auth.CurrentUser.is_verified).
    if not getattr(user, "is_verified", False):
        return Actor(id=user.id, is_staff=False)
    rows = await session.execute(
        select(Membership.association_id, Membership.role).where(Membership.user_id == user.id))
    return Actor(id=user.id, is_staff=user.is_staff, roles={row.association_id: row.role for row in rows})


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").lower() + "%"


@dataclass(frozen=True, slots=True)
class StaffEventRow:
    id: int
    slug: str
    title: str
    association_id: int
    association_name: str
    starts_at: datetime
    status: EventStatus
    submitted_at: datetime | None
    seats: SeatState


_STAFF_EVENT_COLUMNS = (
    Event.id, Event.slug, Event.title, Event.association_id, Association.name.label("association_name"),
    Event.starts_at, Event.status, Event.submitted_at, Event.capacity,
    TAKEN_COUNT, WAITLISTED_COUNT,
)


def _staff_row(row) -> StaffEventRow:
    return StaffEventRow(row.id, row.slug, row.title, row.association_id, row.association_name, row.starts_at,
                         row.status, row.submitted_at, SeatState(row.capacity, row.taken, row.waitlisted))


@dataclass(frozen=True, slots=True)
class StaffEventPage:
    rows: list[StaffEventRow]
    page: int
    has_next: bool


async def staff_events(
    session: db.Reader, *, actor: Actor, status: EventStatus | None = None, association_id: int | None = None,
    query: str = "", page: int = 1,
) -> StaffEventPage:
    """The events the actor manages (staff: all), newest first, filtered."""
    statement = (select(*_STAFF_EVENT_COLUMNS).join(Association, Association.id == Event.association_id)
                 .order_by(Event.starts_at.desc(), Event.id.desc()))
    if not actor.is_staff:
        statement = statement.where(Event.association_id.in_(actor.editable_association_ids() or {0}))
    if status is not None:
        statement = statement.where(Event.status == status)
    if association_id is not None:
        statement = statement.where(Event.association_id == association_id)
    if query:
        statement = statement.where(search.words_in(Event.title, query, dialect_name=db.dialect_name(session)))
    rows = (await session.execute(statement.limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE))).all()
    return StaffEventPage([_staff_row(row) for row in rows[:PER_PAGE]], page, len(rows) > PER_PAGE)


async def approval_queue(session: db.Reader) -> list[StaffEventRow]:
    """Submitted events, oldest submission first."""
    statement = (select(*_STAFF_EVENT_COLUMNS).join(Association, Association.id == Event.association_id)
                 .where(lifecycle.awaiting_review())
                 .order_by(Event.submitted_at.nulls_first(), Event.id))
    return [_staff_row(row) for row in await session.execute(statement)]


@dataclass(frozen=True, slots=True)
class AdminEvent:
    event: Event
    association_name: str
    seats: SeatState
    entries: int = 0  # entries waiting for a lottery's draw


async def admin_event(session: AsyncSession, *, event_id: int) -> AdminEvent | None:
    """The event as an ORM entity (so a session, not a bare connection), its association's name, its seats."""
    row = (await session.execute(
        select(Event, Association.name, TAKEN_COUNT, WAITLISTED_COUNT, count_of(RegistrationStatus.ENTERED))
        .join(Association, Association.id == Event.association_id).where(Event.id == event_id))).first()
    if row is None:
        return None
    event, association_name, taken, waitlisted, entries = row
    return AdminEvent(event, association_name, SeatState(event.capacity, taken, waitlisted), entries)


@dataclass(frozen=True, slots=True)
class AttendeeRow:
    registration_id: int
    user_id: int
    display_name: str
    email: str
    promo: int | None
    status: RegistrationStatus
    queued_at: datetime
    checked_in_at: datetime | None
    waitlist_position: int | None
    is_staff: bool = False  # shown as a badge beside the name (a name alone can read "staff")
    offer_expires_at: datetime | None = None  # a seat offered: its deadline (passed, for an expired offer)


# Staff status as the rest of the site grants it: only with a confirmed address (events.rules.accounts).
_CONFIRMED_STAFF = User.is_staff.is_(True) & verified()


async def attendees(session: db.Reader, *, event_id: int, query: str = "") -> list[AttendeeRow]:
    """Confirmed first (by name), then the seats offered and not answered yet (soonest deadline first), the
    waitlist in order, and the offers that expired (latest first)."""
    statement = (
        select(Registration.id, Registration.user_id, User.display_name, User.email, User.promo,
               Registration.status, Registration.queued_at, Registration.checked_in_at,
               waitlist_position_of(Registration).label("position"), _CONFIRMED_STAFF.label("is_staff"),
               Registration.offer_expires_at)
        .join(User, User.id == Registration.user_id)
        .where(Registration.event_id == event_id, Registration.status != RegistrationStatus.CANCELLED)
        .order_by(Registration.status, *LINE_ORDER)
    )
    if query:
        statement = statement.where(search.words_in(User.display_name + " " + User.email, query,
                                                    dialect_name=db.dialect_name(session)))
    rows = [
        AttendeeRow(row.id, row.user_id, row.display_name, row.email, row.promo, row.status, row.queued_at,
                    row.checked_in_at, row.position if row.status == RegistrationStatus.WAITLISTED else None,
                    bool(row.is_staff), row.offer_expires_at)
        for row in await session.execute(statement)
    ]
    confirmed = sorted((r for r in rows if r.status == RegistrationStatus.CONFIRMED),
                       key=lambda r: r.display_name.casefold())
    offered = sorted((r for r in rows if r.status == RegistrationStatus.OFFERED),
                     key=lambda r: r.offer_expires_at or r.queued_at)
    waitlist = sorted((r for r in rows if r.status == RegistrationStatus.WAITLISTED),
                      key=lambda r: r.waitlist_position or 0)
    expired = sorted((r for r in rows if r.status == RegistrationStatus.EXPIRED),
                     key=lambda r: r.offer_expires_at or r.queued_at, reverse=True)
    return confirmed + offered + waitlist + expired


@dataclass(frozen=True, slots=True)
class AssociationRow:
    id: int
    slug: str
    name: str
    description: str
    members: int
    no_show_delay_hours: int | None = None
    no_show_penalty_days: int = 30
    logo: str | None = None
    logo_alt: str = ""


async def associations_for(session: db.Reader, *, actor: Actor) -> list[AssociationRow]:
    members = (select(func.count(Membership.id)).where(Membership.association_id == Association.id)
               .correlate(Association).scalar_subquery())
    statement = select(Association.id, Association.slug, Association.name, Association.description,
                       members.label("members")).order_by(Association.name)
    if not actor.is_staff:
        statement = statement.where(Association.id.in_(set(actor.roles) or {0}))
    return [AssociationRow(*row) for row in await session.execute(statement)]


async def association_by_id(session: db.Reader, *, association_id: int) -> AssociationRow | None:
    row = (await session.execute(
        select(Association.id, Association.slug, Association.name, Association.description,
               Association.no_show_delay_hours, Association.no_show_penalty_days, Association.logo,
               Association.logo_alt)
        .where(Association.id == association_id))).first()
    return None if row is None else AssociationRow(row.id, row.slug, row.name, row.description, members=0,
                                                   no_show_delay_hours=row.no_show_delay_hours,
                                                   no_show_penalty_days=row.no_show_penalty_days,
                                                   logo=row.logo, logo_alt=row.logo_alt)


@dataclass(frozen=True, slots=True)
class MemberRow:
    user_id: int
    display_name: str
    email: str
    role: Role


async def members(session: db.Reader, *, association_id: int) -> list[MemberRow]:
    statement = (select(User.id, User.display_name, User.email, Membership.role)
                 .join(Membership, Membership.user_id == User.id)
                 .where(Membership.association_id == association_id)
                 .order_by(Membership.role.desc(), User.display_name))
    return [MemberRow(*row) for row in await session.execute(statement)]


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    email: str
    display_name: str
    promo: int | None
    is_staff: bool
    is_active: bool
    last_login_at: datetime | None


async def users(session: db.Reader, *, query: str = "", page: int = 1) -> tuple[list[UserRow], bool]:
    statement = (select(User.id, User.email, User.display_name, User.promo, User.is_staff, User.is_active,
                        User.last_login_at).order_by(User.display_name, User.id))
    if query:
        statement = statement.where(search.words_in(User.display_name + " " + User.email, query,
                                                    dialect_name=db.dialect_name(session)))
    rows = (await session.execute(statement.limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE))).all()
    return [UserRow(*row) for row in rows[:PER_PAGE]], len(rows) > PER_PAGE


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    created_at: datetime
    actor_name: str | None
    action: str
    object_type: str
    object_id: int | None
    association_name: str | None
    changes: dict
    actor_is_staff: bool = False


async def audit_entries(
    session: db.Reader, *, action: str = "", association_id: int | None = None, actor_email: str = "",
    object_type: str = "", object_id: int | None = None, page: int = 1,
) -> tuple[list[AuditRow], bool]:
    statement = (
        select(AuditEntry.id, AuditEntry.created_at, User.display_name, AuditEntry.action, AuditEntry.object_type,
               AuditEntry.object_id, Association.name, AuditEntry.changes,
               func.coalesce(_CONFIRMED_STAFF, False).label("actor_is_staff"))
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .outerjoin(Association, Association.id == AuditEntry.association_id)
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    )
    if action:
        statement = statement.where(AuditEntry.action.like(_like(action), escape="\\"))
    if association_id is not None:
        statement = statement.where(AuditEntry.association_id == association_id)
    if actor_email:
        statement = statement.where(User.email == normalize_email(actor_email))
    if object_type:
        statement = statement.where(AuditEntry.object_type == object_type)
    if object_id is not None:
        statement = statement.where(AuditEntry.object_id == object_id)
    rows = (await session.execute(statement.limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE))).all()
    return [AuditRow(*row) for row in rows[:PER_PAGE]], len(rows) > PER_PAGE


async def associations_choices(
    session: db.Reader, *, actor: Actor, editable_only: bool = True
) -> list[tuple[int, str]]:
    statement = select(Association.id, Association.name).order_by(Association.name)
    if not actor.is_staff and editable_only:
        statement = statement.where(Association.id.in_(actor.editable_association_ids() or {0}))
    return [(row.id, row.name) for row in await session.execute(statement)]


@dataclass(frozen=True, slots=True)
class FailedMessageRow:
    id: int
    kind: str
    recipient_email: str | None
    event_title: str | None
    attempts: int
    last_error: str
    created_at: datetime


async def outbox_failed(session: db.Reader, *, limit: int = 200) -> list[FailedMessageRow]:
    statement = (
        select(OutboxMessage.id, OutboxMessage.kind, User.email, Event.title, OutboxMessage.attempts,
               OutboxMessage.last_error, OutboxMessage.created_at)
        .outerjoin(User, User.id == OutboxMessage.recipient_id)
        .outerjoin(Event, Event.id == OutboxMessage.event_id)
        .where(OutboxMessage.status == OutboxStatus.FAILED)
        .order_by(OutboxMessage.created_at.desc()).limit(limit)
    )
    return [FailedMessageRow(*row) for row in await session.execute(statement)]
