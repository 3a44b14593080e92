"""The SQLAlchemy models of the site: the only description of the schema (Alembic migrates from it), a module
per topic; every name is imported from here (``from events.models import Event``), and importing the package
maps every table on ``Base.metadata``.

Every relationship is ``lazy="raise"``: a page that forgot to load what it shows fails in tests instead of
running a hidden query. Datetimes are timezone-aware end to end (stored in UTC).
"""

from __future__ import annotations

from events.models.accounts import Association, AuthSession, Follow, Membership, Role, Throttle, User
from events.models.base import NAMING_CONVENTION, Base, UTCDateTime, utcnow
from events.models.events import Event, EventStatus
from events.models.records import AuditEntry, OutboxMessage, OutboxStatus
from events.models.registrations import Registration, RegistrationAnswers, RegistrationStatus

__all__ = [
    "NAMING_CONVENTION",
    "Association",
    "AuditEntry",
    "AuthSession",
    "Base",
    "Event",
    "EventStatus",
    "Follow",
    "OutboxMessage",
    "OutboxStatus",
    "Membership",
    "Registration",
    "RegistrationAnswers",
    "RegistrationStatus",
    "Role",
    "Throttle",
    "User",
    "UTCDateTime",
    "utcnow",
]
