"""An event's lifecycle: the fields an event carries, which of them a published event may still change, and
the one table of legal status transitions with the audit action each one writes."""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy.orm import QueryableAttribute

from events.models import Event, EventStatus

# The fields an event form carries; published events only let managers change the PUBLISHED_EDITABLE ones.
EVENT_FIELDS = ("title", "description", "association_id", "category", "location", "starts_at", "ends_at",
                "all_day", "capacity", "registration_opens_at", "registration_closes_at",
                "unregistration_closes_at", "lottery_minutes", "members_open_at", "priority_promos", "promos_open_at",
                "priority_emails", "emails_open_at", "reserved_seats", "reserved_until", "offer_hours",
                "restricted_to", "restricted_promos", "restricted_emails", "hidden_from_others")


# A published event's title and description may be corrected (a typo, a detail added): its pages and feeds show
# the new text at once, and nobody is sent a message for it. A new date, time or place is told to its registrants
# (events.notifications.changes.SCHEDULE_FIELDS). The association, category, slug and opening rules stay as
# published: students planned on them, and shared links name the slug.
# Who may register (restrictions.FIELDS: the mode, the promo years, the invitation list) may change too, wider or
# narrower: an invitation list grows, a promo is added, an event opens to everyone. The rule is asked when a student
# registers and never again, so a narrower one keeps every registration already made (confirmed, offered, waiting or
# entered in a draw); the organisers are told how many of those it would not admit (staff.services.event_update),
# and remove them by hand if they must. A members' event hidden from others is not hidden once published (its
# registrants and followers already know of it); opened wider, it shows to all again.
PUBLISHED_EDITABLE = ("title", "description", "starts_at", "ends_at", "all_day", "location", "capacity",
                      "restricted_to", "restricted_promos", "restricted_emails")


# Lifecycle: the one table of legal transitions.
AUDIT_ACTIONS = {"submit": "event.submitted", "approve": "event.approved", "decline": "event.declined",
                 "cancel": "event.cancelled"}


TRANSITIONS = {
    "submit": ({EventStatus.DRAFT, EventStatus.DECLINED}, EventStatus.SUBMITTED),
    "approve": ({EventStatus.SUBMITTED}, EventStatus.APPROVED),
    "decline": ({EventStatus.SUBMITTED}, EventStatus.DECLINED),
    "cancel": ({EventStatus.APPROVED}, EventStatus.CANCELLED),
}


def can_transition(status: EventStatus, action: str) -> bool:
    """Whether an event in ``status`` may take ``action`` (submit, approve, decline, cancel): the services
    check it before writing, the management pages before offering the button, importics before cancelling."""
    return status in TRANSITIONS[action][0]


def target_of(action: str) -> EventStatus:
    return TRANSITIONS[action][1]


def awaiting_review(status_column: QueryableAttribute[EventStatus] = Event.status) -> ColumnElement[bool]:
    """SQL: submitted and waiting for staff to approve or decline it (the approval queue)."""
    return status_column == EventStatus.SUBMITTED
