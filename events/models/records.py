"""What a change writes beside itself, in its own transaction: the audit log and the e-mail outbox."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from events.models.base import Base, string_enum, utcnow


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
    status: Mapped[OutboxStatus] = mapped_column(string_enum(OutboxStatus, "outbox_status"),
                                                 default=OutboxStatus.PENDING)
    send_after: Mapped[datetime] = mapped_column(default=utcnow)
    # One row per key (a reminder per registration, a digest per staff member and day): no duplicates.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
