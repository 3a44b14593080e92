"""The registrations: a student's place at an event (a seat, the waitlist, an entry, an offer) and their answers."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from events.models.base import Base, string_enum, utcnow

if TYPE_CHECKING:  # the relationships' targets, resolved by name when the mappers are configured
    from events.models.accounts import User
    from events.models.events import Event


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
    status: Mapped[RegistrationStatus] = mapped_column(string_enum(RegistrationStatus, "registration_status"))
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
