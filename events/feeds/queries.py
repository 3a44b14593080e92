"""Reads for the iCalendar feeds: the published events, a student's registrations, and when they changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select

from events.accounts.auth import feed_token_hash
from events.models import Association, Event, EventStatus, Follow, Membership, Registration, RegistrationStatus, User
from events.rules.seats import waitlist_position_of
from events.rules.visibility import listed, listed_for, published
from hyperion import db


@dataclass(frozen=True, slots=True)
class FeedEventRow:
    id: int
    slug: str
    title: str
    description: str
    location: str
    category: str
    starts_at: datetime
    ends_at: datetime
    all_day: bool
    status: EventStatus
    sequence: int
    updated_at: datetime
    # Who may see it (restrictions.may_see): a members' event hidden from others has one .ics for its members.
    association_id: int = 0
    hidden_from_others: bool = False


@dataclass(frozen=True, slots=True)
class FeedRegistrationRow:
    event: FeedEventRow
    status: RegistrationStatus
    waitlist_position: int | None  # set only while waitlisted
    updated_at: datetime
    offer_expires_at: datetime | None = None  # a seat offered: until when it may be accepted


@dataclass(frozen=True, slots=True)
class FeedOwner:
    id: int
    display_name: str
    language: str
    # Latest change to the student's events or to any registration on them: other students' registrations
    # count because they move this student's waitlist position; events of any status count so that an
    # unpublished event makes the feed "modified".
    changed_at: datetime | None = None
    follows_events: bool = False  # follows an association that has events (its feed lists them)


@dataclass(frozen=True, slots=True)
class FeedAssociation:
    id: int
    slug: str
    name: str


# Columns, not entities: every subscribed calendar polls the feeds, and the identity map is pure cost here.
_EVENT_COLUMNS = (
    Event.id,
    Event.slug,
    Event.title,
    Event.description,
    Event.location,
    Event.category,
    Event.starts_at,
    Event.ends_at,
    Event.all_day,
    Event.status,
    Event.sequence,
    Event.updated_at,
    Event.association_id,
    Event.hidden_from_others,
)


def _event_row(row) -> FeedEventRow:
    return FeedEventRow(
        id=row.id,
        slug=row.slug,
        title=row.title,
        description=row.description,
        location=row.location,
        category=row.category,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        all_day=row.all_day,
        status=row.status,
        sequence=row.sequence,
        updated_at=row.updated_at,
        association_id=row.association_id,
        hidden_from_others=row.hidden_from_others,
    )


def _in_scope(statement, *, association_slug: str | None, category: str | None):
    if association_slug is not None:
        association_ids = select(Association.id).where(Association.slug == association_slug)
        statement = statement.where(Event.association_id.in_(association_ids.scalar_subquery()))
    if category is not None:
        statement = statement.where(Event.category == category)
    return statement


async def association_by_slug(session: db.Reader, *, slug: str) -> FeedAssociation | None:
    row = (await session.execute(
        select(Association.id, Association.slug, Association.name).where(Association.slug == slug)
    )).first()
    return None if row is None else FeedAssociation(id=row.id, slug=row.slug, name=row.name)


async def feed_event_published(session: db.Reader, *, slug: str) -> FeedEventRow | None:
    """One published event, whenever it happens; None for an unknown or unpublished slug. A members' event
    hidden from others too: its caller asks ``restrictions.may_see``."""
    row = (await session.execute(
        select(*_EVENT_COLUMNS).where(Event.slug == slug, published())
    )).first()
    return None if row is None else _event_row(row)


async def feed_events_published(
    session: db.Reader, *, since: datetime, association_slug: str | None = None, category: str | None = None
) -> list[FeedEventRow]:
    """Published events (cancelled ones included) that end at or after ``since``, in start order."""
    statement = (
        select(*_EVENT_COLUMNS)
        .where(listed(), Event.ends_at >= since)
        .order_by(Event.starts_at, Event.id)
    )
    statement = _in_scope(statement, association_slug=association_slug, category=category)
    return [_event_row(row) for row in (await session.execute(statement)).all()]


async def feed_events_changed_at(
    session: db.Reader, *, association_slug: str | None = None, category: str | None = None
) -> datetime | None:
    """Latest change to any event of the feed's scope, whatever its status or date.

    Broader than the events shown on purpose: an event that is unpublished leaves the feed while its own
    updated_at moves forward, and If-Modified-Since must then say "modified".
    """
    statement = _in_scope(select(func.max(Event.updated_at)), association_slug=association_slug,
                          category=category)
    return (await session.execute(statement)).scalar_one()




_FEED_REGISTRATIONS = (
    select(
        *_EVENT_COLUMNS,
        Registration.status.label("registration_status"),
        Registration.updated_at.label("registration_updated_at"),
        waitlist_position_of(Registration).label("waitlist_position"),
        Registration.offer_expires_at.label("offer_expires_at"),
    )
    .join(Event, Event.id == Registration.event_id)
    .where(Registration.user_id == bindparam("user_id"), published())
    .order_by(Event.starts_at, Event.id)
)


async def feed_registrations(session: db.Reader, *, user_id: int) -> list[FeedRegistrationRow]:
    """The student's registrations (left ones included) on published events, in start order."""
    return [
        FeedRegistrationRow(
            event=_event_row(row),
            status=row.registration_status,
            waitlist_position=(row.waitlist_position
                               if row.registration_status == RegistrationStatus.WAITLISTED else None),
            updated_at=row.registration_updated_at,
            offer_expires_at=row.offer_expires_at,
        )
        for row in (await session.execute(_FEED_REGISTRATIONS, {"user_id": user_id})).all()
    ]


async def feed_followed(session: db.Reader, *, user_id: int, since: datetime) -> list[FeedEventRow]:
    """The events of the associations the student follows, listed for them (a members' event hidden from others
    if they are a member), that end at or after ``since`` and that the student has no registration for (those
    are in the feed with the student's own state), in start order."""
    mine = select(Registration.event_id).where(Registration.user_id == user_id)
    member_of = select(Membership.association_id).where(Membership.user_id == user_id)
    rows = await session.execute(
        select(*_EVENT_COLUMNS)
        .join(Follow, (Follow.association_id == Event.association_id) & (Follow.user_id == user_id))
        .where(listed_for(member_of), Event.ends_at >= since, Event.id.not_in(mine))
        .order_by(Event.starts_at, Event.id))
    return [_event_row(row) for row in rows.all()]


# The owner and the last change in one round trip: every poll of a calendar application runs it, and an
# unchanged feed is then answered from its built bytes without another statement.
_FEED_EVENT_IDS = select(Registration.event_id).where(Registration.user_id == User.id).correlate(User)
_FEED_OWNER = select(
    User.id, User.display_name, User.language,
    select(func.max(Event.updated_at)).where(Event.id.in_(_FEED_EVENT_IDS)).correlate(User)
    .scalar_subquery().label("events_changed_at"),
    select(func.max(Registration.updated_at)).where(Registration.event_id.in_(_FEED_EVENT_IDS)).correlate(User)
    .scalar_subquery().label("registrations_changed_at"),
    # The followed associations' events, and following or no longer following one.
    select(func.max(Event.updated_at)).where(Event.association_id.in_(
        select(Follow.association_id).where(Follow.user_id == User.id).correlate(User))).correlate(User)
    .scalar_subquery().label("followed_changed_at"),
    User.follows_changed_at,
).where(User.feed_token_hash == bindparam("token_hash"), User.is_active)


async def feed_owner_by_token(session: db.Reader, *, token: str) -> FeedOwner | None:
    """The active student whose personal feed ``token`` opens, with the feed's last change; None for any other
    token."""
    if not token:
        return None
    row = (await session.execute(_FEED_OWNER, {"token_hash": feed_token_hash(token)})).first()
    if row is None:
        return None
    changed_at = max((moment for moment in (row.events_changed_at, row.registrations_changed_at,
                                            row.followed_changed_at, row.follows_changed_at)
                      if moment is not None), default=None)
    return FeedOwner(id=row.id, display_name=row.display_name, language=row.language, changed_at=changed_at,
                     follows_events=row.followed_changed_at is not None)
