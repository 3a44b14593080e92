"""The tables of the people: accounts, associations and their members, follows, log-in sessions, throttles."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from events.models.base import Base, string_enum, utcnow


class Role(enum.StrEnum):
    MEMBER = "member"
    EDITOR = "editor"
    MANAGER = "manager"


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
    role: Mapped[Role] = mapped_column(string_enum(Role, "membership_role"), default=Role.MEMBER)
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


class AuthSession(Base):
    """A logged-in browser. The cookie holds a random token; only its SHA-256 is stored, and logging out
    deletes the row, so a copied cookie is useless afterwards (unlike Django's signed-cookie sessions)."""

    __tablename__ = "auth_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


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
