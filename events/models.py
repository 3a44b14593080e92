"""The SQLAlchemy models of the site: the only description of the schema (Alembic migrates from it).

Every relationship is ``lazy="raise"``: a page that forgot to load what it shows fails in tests instead of
running a hidden query. Datetimes are timezone-aware end to end (stored in UTC).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An aware datetime stored in UTC on every backend (SQLite keeps no zone: we put UTC back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database: use an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def _enum(enum_class: type[enum.Enum], name: str) -> Enum:
    # Stored as short strings with a CHECK constraint: portable, readable in psql, easy to migrate.
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    MEMBER = "member"
    EDITOR = "editor"
    MANAGER = "manager"


class EventStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class RegistrationStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"
    # Asked during a lottery window: no seat and no place in line until the draw makes it one or the other.
    ENTERED = "entered"
    # Promoted from the waitlist of an event whose promotions are offers (events.offer_hours): the seat is held
    # for the student until registrations.offer_expires_at; accepted, it is confirmed.
    OFFERED = "offered"
    # An offer not accepted in time: the seat passed to the next in line (the student may join the line again).
    EXPIRED = "expired"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased (see events/rules/emails.py normalize_email): the unique index then ignores case.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(256))  # made by Django's hashers
    promo: Mapped[int | None] = mapped_column(Integer)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    # SHA-256 (hex) of the personal iCal feed's secret, as for sessions: the token itself (random, regenerable,
    # never derived from the id) is shown once to its owner and never stored, so a copy of the table opens no feed.
    feed_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Set by manage.py purgeusers: personal data replaced, registrations kept for the counts.
    anonymised_at: Mapped[datetime | None]
    # When its owner opened the link sent to the address (or reset the password through it): until then the
    # account may browse but not register, hold a feed or a role (events.accounts.auth.CurrentUser.is_verified).
    email_verified_at: Mapped[datetime | None]
    # E-mail kinds the user turned off (see notifications.PREFERENCES); empty: everything on.
    email_opt_outs: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # The followed associations' new events: each at once, or a weekly digest (events/accounts/follows.py); and
    # when the student last followed or stopped following one (their personal feed changes then).
    follow_emails: Mapped[str] = mapped_column(String(8), default="instant", server_default=text("'instant'"))
    follows_changed_at: Mapped[datetime | None]

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", lazy="raise")


class Association(Base):
    __tablename__ = "associations"
    __table_args__ = (
        CheckConstraint("no_show_delay_hours IS NULL OR no_show_delay_hours > 0", name="no_show_delay_positive"),
        CheckConstraint("no_show_penalty_days > 0", name="no_show_penalty_days_positive"),
        CheckConstraint("logo IS NULL OR logo_alt <> ''", name="logo_has_alt"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    # No-shows (events/rules/attendance.py): a student who held a seat at one of the association's events where
    # attendance was taken, and did not come, registers this many hours after everyone at its next openings,
    # for no_show_penalty_days after that event. None: no such delay.
    no_show_delay_hours: Mapped[int | None] = mapped_column(Integer)
    no_show_penalty_days: Mapped[int] = mapped_column(Integer, default=30, server_default=text("30"))
    # Its logo: the key of a stored image (hyperion/images.py, ImageRef), and its required text alternative.
    logo: Mapped[str | None] = mapped_column(String(40))
    logo_alt: Mapped[str] = mapped_column(String(300), default="", server_default=text("''"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="association", lazy="raise")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "association_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "membership_role"), default=Role.MEMBER)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships", lazy="raise")
    association: Mapped[Association] = relationship(back_populates="memberships", lazy="raise")


class Follow(Base):
    """A student follows an association: its new events by e-mail and in their personal feed."""

    __tablename__ = "follows"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id", ondelete="CASCADE"), primary_key=True,
                                                index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("ends_at >= starts_at", name="ends_after_start"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_not_negative"),
        CheckConstraint("lottery_minutes IS NULL OR lottery_minutes > 0", name="lottery_minutes_positive"),
        CheckConstraint("offer_hours IS NULL OR offer_hours > 0", name="offer_hours_positive"),
        CheckConstraint("reserved_seats IS NULL OR (reserved_seats > 0 AND reserved_seats <= capacity)",
                        name="reserved_seats_within_capacity"),
        CheckConstraint("restricted_to IN ('everyone', 'members', 'promos', 'invited')", name="restricted_to_known"),
        CheckConstraint("NOT hidden_from_others OR restricted_to = 'members'", name="hidden_only_for_members"),
        CheckConstraint("poster IS NULL OR poster_alt <> ''", name="poster_has_alt"),
        # The public list: approved events from now on, in start order.
        Index("ix_events_status_starts_at", "status", "starts_at"),
        Index("ix_events_association_id_starts_at", "association_id", "starts_at"),
        Index("ix_events_category_starts_at", "category", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id", ondelete="RESTRICT"))
    category: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(String(200), default="")
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    capacity: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    registration_opens_at: Mapped[datetime | None]
    registration_closes_at: Mapped[datetime | None]  # None: until the event starts
    unregistration_closes_at: Mapped[datetime | None]  # None: until the event starts
    # Opening by lottery: every student who asks in the first N minutes after registration opens gets an
    # entry, and the seats are drawn at random among the entries when that window closes (None: first come).
    lottery_minutes: Mapped[int | None] = mapped_column(Integer)
    # The draw, once it ran: its seed (the drawn order is reproducible from it), when, and who ran it (None:
    # the site itself, at the window's close).
    lottery_seed: Mapped[int | None] = mapped_column(BigInteger)
    lottery_drawn_at: Mapped[datetime | None]
    lottery_drawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Priority openings (events/rules/priority.py): registration opens earlier for the members of the
    # organising association, for some promo years, for a list of addresses, each group at its own time; all
    # merge into one pool at registration_opens_at. None: no such group.
    members_open_at: Mapped[datetime | None]
    promos_open_at: Mapped[datetime | None]
    priority_promos: Mapped[list[int] | None] = mapped_column(JSON)
    emails_open_at: Mapped[datetime | None]
    priority_emails: Mapped[list[str] | None] = mapped_column(JSON)  # normalised addresses
    # Seats held for the priority groups above until reserved_until: students outside them may take only the
    # others meanwhile (events/rules/seats.py). None: nothing held.
    reserved_seats: Mapped[int | None] = mapped_column(Integer)
    reserved_until: Mapped[datetime | None]
    # Promotions from the waitlist are offers the student accepts within this many hours (less close to the
    # event: events/rules/offers.py); None: a promotion confirms at once.
    offer_hours: Mapped[int | None] = mapped_column(Integer)
    # Who may register (events/rules/restrictions.py): everyone, the organising association's members, some promo
    # years (restricted_promos), or the addresses on an invitation list (restricted_emails, normalised). A
    # members' event may also be hidden from everyone else (lists, calendars, feeds, its page).
    restricted_to: Mapped[str] = mapped_column(String(16), default="everyone", server_default=text("'everyone'"))
    restricted_promos: Mapped[list[int] | None] = mapped_column(JSON)
    restricted_emails: Mapped[list[str] | None] = mapped_column(JSON)
    hidden_from_others: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Registration questions (events/registration/questions.py): [{"id", "kind", "label", "choices",
    # "required"}], answered when registering and changeable until answers_close_at (None: until the start).
    questions: Mapped[list[dict]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    answers_close_at: Mapped[datetime | None]
    # Its poster: the key of a stored image (hyperion/images.py, ImageRef), and its required text alternative.
    poster: Mapped[str | None] = mapped_column(String(40))
    poster_alt: Mapped[str] = mapped_column(String(300), default="", server_default=text("''"))
    status: Mapped[EventStatus] = mapped_column(_enum(EventStatus, "event_status"), default=EventStatus.DRAFT)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # iCalendar SEQUENCE: bumped when the date, place or status changes, so calendars take the update.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # UID of the iCalendar event this one was imported from (manage.py importics is idempotent by it).
    ical_uid: Mapped[str | None] = mapped_column(String(255), unique=True)
    # When it last entered the approval queue (the queue is served oldest first), and when it was published.
    submitted_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    # When the date, time, place or capacity of the published event last changed (shown to registrants).
    changed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    association: Mapped[Association] = relationship(lazy="raise")
    registrations: Mapped[list[Registration]] = relationship(back_populates="event", lazy="raise")


class Registration(Base):
    __tablename__ = "registrations"
    __table_args__ = (
        # One registration per user and event, whatever the concurrency.
        UniqueConstraint("event_id", "user_id"),
        # Seat counts and the waitlist in arrival order.
        Index("ix_registrations_event_id_status_queued_at", "event_id", "status", "queued_at"),
        Index("ix_registrations_user_id_status", "user_id", "status"),
        # The offers due to expire, across events (the sweeper's scan).
        Index("ix_registrations_offer_expires_at", "offer_expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[RegistrationStatus] = mapped_column(_enum(RegistrationStatus, "registration_status"))
    # When the student (re)joined: the waitlist is served in (queued_at, id) order.
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_in_at: Mapped[datetime | None]
    # The seat was one of those held for the event's priority groups (rules/seats.py), taken while they were.
    from_reserve: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # An offered seat's deadline (status offered), kept once it lapsed (status expired); None otherwise.
    offer_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship(back_populates="registrations", lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")


class RegistrationAnswers(Base):
    """A student's answers to an event's questions, ``{question id: answer}``. A row of its own rather than
    columns of the registration: the seat writers (locked, batched) stay as they are, and the answers are
    given with the registration and changed on their own until the event's deadline."""

    __tablename__ = "registration_answers"
    __table_args__ = (Index("ix_registration_answers_user_id", "user_id"),)  # a student's data, their removal

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    answers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuthSession(Base):
    """A logged-in browser. The cookie holds a random token; only its SHA-256 is stored, and logging out
    deletes the row, so a copied cookie is useless afterwards (unlike Django's signed-cookie sessions)."""

    __tablename__ = "auth_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuditEntry(Base):
    """Append-only log of every change staff, managers and editors make, written in the same transaction
    as the change by ``audit.audit_log`` (pretix's log_action, Zulip's RealmAuditLog)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_object_type_object_id", "object_type", "object_id"),
        Index("ix_audit_log_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)  # dotted: event.approved, registration.removed
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column(Integer)
    association_id: Mapped[int | None] = mapped_column(
        ForeignKey("associations.id", ondelete="SET NULL"), index=True)
    # {"field": [before, after], ...} for changes; free-form details otherwise.
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"  # no longer relevant (reminder of a cancelled event, opted out, account gone)


class OutboxMessage(Base):
    """An e-mail to send, written in the same transaction as the change it tells about (transactional
    outbox): a rolled-back change sends nothing, a committed one is never forgotten. Senders claim rows
    (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and mark them sent, retried with backoff, or failed."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_send_after", "status", "send_after"),
        Index("ix_outbox_event_id_kind_status", "event_id", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # registration.confirmed, event.cancelled, event.reminder, ...
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING)
    send_after: Mapped[datetime] = mapped_column(default=utcnow)
    # One row per key (a reminder per registration, a digest per staff member and day): no duplicates.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Throttle(Base):
    """How many attempts one key made at something guessable (a password, a sign-up, an e-mail sent on request),
    and when the next one is allowed (events.accounts.throttle). A key is a scope and a subject (an e-mail
    address, an account id) and/or a client address; '' stands for "any"."""

    __tablename__ = "throttles"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(254), primary_key=True)
    address: Mapped[str] = mapped_column(String(45), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    next_allowed_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(index=True)


__all__ = [
    "Association",
    "AuditEntry",
    "AuthSession",
    "Base",
    "Event",
    "EventStatus",
    "OutboxMessage",
    "OutboxStatus",
    "Membership",
    "Registration",
    "RegistrationStatus",
    "Role",
    "Throttle",
    "User",
]
