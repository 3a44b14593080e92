"""Test data made the way the site makes it: through the real services (each in its own committed
transaction), so a test starts from rows the code could have written, audit entries and e-mails included.

The set-up acts as ``SET_UP``, a staff actor without an account: it adds no user row that a test would count,
and the rows it writes name no creator (``created_by_id`` and the audit entries' actor stay empty).

Where a test needs a state no service makes (a registration placed against the rules, an inconsistent row
for the invariant checker, time passing), it says so in a ``# raw: <why>`` comment and uses the raw inserts of
tests/support.py or a statement of its own (checked by tests/test_suite_rules.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from events.accounts import services as account_services
from events.catalog import queries as catalog_queries
from events.models import Event, EventStatus, Role, User, utcnow
from events.registration import leaving, lottery
from events.registration import services as registration_services
from events.rules.permissions import Actor
from events.staff import people
from events.staff import services as staff_services
from hyperion import db

SET_UP = Actor(id=None, is_staff=True)  # type: ignore[arg-type]

# The transitions that lead from a new draft to each status (events.rules.lifecycle.TRANSITIONS).
_PATH = {
    EventStatus.DRAFT: (),
    EventStatus.SUBMITTED: ("submit",),
    EventStatus.APPROVED: ("submit", "approve"),
    EventStatus.DECLINED: ("submit", "decline"),
    EventStatus.CANCELLED: ("submit", "approve", "cancel"),
}
_FIELDS = ("description", "location", "all_day", "registration_opens_at", "registration_closes_at",
           "unregistration_closes_at", "lottery_minutes", "offer_hours", "restricted_to", "restricted_promos",
           "restricted_emails", "hidden_from_others")


async def association(*, slug: str = "bde", name: str = "BDE", description: str = "", **no_shows) -> int:
    """An association (``no_shows``: its no_show_delay_hours and no_show_penalty_days)."""
    async with db.write_session() as session:
        return await people.association_save(session, actor=SET_UP, association_id=None, slug=slug, name=name,
                                             description=description, **no_shows)


async def user(*, email: str = "alice@etu.test", display_name: str = "Alice", is_staff: bool = False,
               password_hash: str = "!", verified: bool = True, **fields) -> int:  # noqa: S107 - "!" is unusable
    """An account; its address confirmed unless ``verified=False`` (as after sign-up, before the link)."""
    async with db.write_session() as session:
        return await account_services.user_create(session, email=email, display_name=display_name,
                                                  password_hash=password_hash, is_staff=is_staff,
                                                  verified=verified, **fields)


async def member(*, association_id: int, user_id: int, role: Role) -> None:
    """Give ``role`` in the association to the account ``user_id``, as a manager does (by its e-mail)."""
    async with db.write_session() as session:
        email = (await session.execute(select(User.email).where(User.id == user_id))).scalar_one()
        await session.commit()
        await people.role_set(session, actor=SET_UP, association_id=association_id, email=email, role=role)

async def event(*, association_id: int, slug: str = "gala", title: str = "Gala", starts_at: datetime | None = None,
                hours: float = 3, capacity: int | None = 50, category: str = "party",
                status: EventStatus = EventStatus.APPROVED, reason: str = "Set-up", **fields) -> int:
    """An event created as a draft and moved to ``status`` by the staff services (a past date included:
    the services take any date, only the forms refuse one)."""
    starts_at = starts_at or utcnow() + timedelta(days=7)
    values = {"title": title, "association_id": association_id, "category": category, "starts_at": starts_at,
              "ends_at": starts_at + timedelta(hours=hours), "capacity": capacity,
              **{name: fields.pop(name) for name in _FIELDS if name in fields}}
    async with db.write_session() as session:
        event_id = (await staff_services.event_create(session, actor=SET_UP, values=values)).id
    for action in _PATH[status]:
        await event_transition(event_id=event_id, action=action, reason=reason)
    # The services name an event from its title and day; the tests choose a short address of their own. Any
    # other column (when it was submitted, say) is a state no service sets at will.
    async with db.write_session() as session, session.begin():
        await session.execute(update(Event).where(Event.id == event_id).values(slug=slug, **fields))
    return event_id


async def event_transition(*, event_id: int, action: str, reason: str = "Set-up") -> None:
    """Move an event on as staff would ("cancel" an event with registrations, say)."""
    async with db.write_session() as session:
        await staff_services.event_transition(session, actor=SET_UP, event_id=event_id, action=action,
                                              reason=reason if action in ("decline", "cancel") else "")


async def registration(*, event_id: int, user_id: int) -> registration_services.RegistrationOutcome:
    """A student's own registration: confirmed while seats remain, else in line (the window must be open).
    The outcome says which, and ``registration_id`` names the row."""
    async with db.write_session() as session:
        return await registration_services.registration_create(session, event_id=event_id, user_id=user_id)


async def registration_id(*, event_id: int, user_id: int) -> int:
    """``registration``, for a test that only needs the row's id."""
    return (await registration(event_id=event_id, user_id=user_id)).registration_id


async def registration_leave(*, event_id: int, user_id: int) -> leaving.LeaveOutcome:
    """The student leaves (the row stays, cancelled); a freed seat goes to the first in line."""
    async with db.write_session() as session:
        return await leaving.registration_leave(session, event_id=event_id, user_id=user_id)


# Openings by lottery (events/registration/lottery.py).

async def lottery_event(*, capacity: int = 3, opened_minutes_ago: float = 1, minutes: int = 10,
                        slug: str = "gala") -> int:
    """An event whose registration opened ``opened_minutes_ago`` with a lottery window of ``minutes``."""
    organiser = await association(slug=f"asso-{slug}", name=f"Asso {slug}")
    return await event(association_id=organiser, slug=slug, capacity=capacity,
                       registration_opens_at=utcnow() - timedelta(minutes=opened_minutes_ago), lottery_minutes=minutes)


async def lottery_window_close(event_id: int) -> None:
    """The window ends now (as time passing would: the opening moves back past the window's length)."""
    async with db.write_session() as session, session.begin():
        minutes = (await session.execute(select(Event.lottery_minutes).where(Event.id == event_id))).scalar_one()
        await session.execute(Event.__table__.update().where(Event.id == event_id).values(
            registration_opens_at=utcnow() - timedelta(minutes=minutes, seconds=1)))


async def lottery_entry(slug: str, user_id: int) -> registration_services.RegistrationOutcome | None:
    """An ask by the fast path the page's form takes: the event as the page knows it, one INSERT (None: nothing
    written, the view would take the locked path)."""
    async with db.read_connection() as connection:
        detail = await catalog_queries.event_detail(connection, slug=slug, viewer_id=None)
    async with db.write_session() as session:
        return await lottery.lottery_enter(session, event=detail, event_id=detail.id, user_id=user_id)
