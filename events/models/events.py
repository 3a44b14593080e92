"""The events table: an event's date, place, seats, openings, restrictions, questions and status."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from events.models.base import Base, string_enum, utcnow

if TYPE_CHECKING:  # the relationships' targets, resolved by name when the mappers are configured
    from events.models.accounts import Association
    from events.models.registrations import Registration


class EventStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"


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
    status: Mapped[EventStatus] = mapped_column(string_enum(EventStatus, "event_status"), default=EventStatus.DRAFT)
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
