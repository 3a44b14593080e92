"""What the management area's tests share: the team of people they act as, logged-in clients, the
forms' fields, and the database checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.test import AsyncClient
from django.urls import reverse
from sqlalchemy import insert, select

from events.models import (
    Association,
    AuditEntry,
    Event,
    Membership,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from hyperion import db
from tests import factories, support

PARIS = ZoneInfo("Europe/Paris")


# Set-up.

async def client_for(user_id: int | None = None) -> AsyncClient:
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # as the language switch leaves it
    if user_id is not None:
        await support.login(client, user_id)
    return client


@dataclass
class Team:
    bde: int
    bds: int
    staff: int
    manager: int
    editor: int
    student: int


async def team() -> Team:
    """Two associations; a staff member, the BDE's manager and editor, a student (member of the BDE)."""
    # raw: the staff tests count the audit entries their own actions write, and the services would add theirs
    # for this set-up.
    async with db.write_session() as session, session.begin():
        async def add(model, **values) -> int:
            return (await session.execute(insert(model).returning(model.id), values)).scalar_one()

        bde = await add(Association, slug="bde", name="BDE", description="")
        bds = await add(Association, slug="bds", name="BDS", description="")
        people = {}
        for email, name in [("staff", "Sam Staff"), ("manager", "Mona Manager"), ("editor", "Eddy Editor"),
                            ("student", "Stella Student")]:
            people[email] = await add(User, email=f"{email}@etu.test", display_name=name, password_hash="!",
                                      is_staff=email == "staff", email_verified_at=utcnow())
        for who, role in [("manager", Role.MANAGER), ("editor", Role.EDITOR), ("student", Role.MEMBER)]:
            await add(Membership, user_id=people[who], association_id=bde, role=role)
    return Team(bde, bds, people["staff"], people["manager"], people["editor"], people["student"])


def paris(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def typed(moment: datetime) -> str:
    """What a datetime-local input sends, in Paris time."""
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def event_fields(association_id: int, *, starts: datetime | None = None, hours: int = 3, **overrides) -> dict:
    starts = starts or paris(2030, 5, 1, 19)
    fields = {
        "title": "Soirée jeux", "association_id": str(association_id), "category": "gaming",
        "location": "Le Foyer", "starts_at": typed(starts), "ends_at": typed(starts + timedelta(hours=hours)),
        "capacity": "30", "registration_opens_at": "", "registration_closes_at": "",
        "unregistration_closes_at": "", "description": "Venez nombreux.",
    }
    fields.update(overrides)
    return fields


def url(name: str, *args) -> str:
    return reverse(name, args=args)


async def after_redirect(client: AsyncClient, response) -> str:
    """The page the browser lands on after a form (where the flash message shows)."""
    assert response.status_code == 302, (response.status_code, response.content[:500])
    landing = await client.get(response["Location"])
    assert landing.status_code == 200, landing.status_code
    return landing.text


# Database checks (Core rows: the read session's identity map never hands back a stale object).

async def event_row(session, event_id: int):
    return (await session.execute(select(*Event.__table__.c).where(Event.id == event_id))).one_or_none()


async def events_all(session) -> list:
    return (await session.execute(select(*Event.__table__.c).order_by(Event.starts_at, Event.id))).all()


async def audit_all(session, action: str | None = None) -> list:
    statement = select(*AuditEntry.__table__.c).order_by(AuditEntry.id)
    if action:
        statement = statement.where(AuditEntry.action == action)
    return (await session.execute(statement)).all()


async def registration_states(session, event_id: int) -> dict[int, RegistrationStatus]:
    rows = await session.execute(select(Registration.user_id, Registration.status)
                                 .where(Registration.event_id == event_id))
    return {row.user_id: row.status for row in rows}


async def students(count: int, prefix: str = "s") -> list[int]:
    return [await factories.user(email=f"{prefix}{number}@etu.test", display_name=f"{prefix.upper()}{number}")
            for number in range(count)]


async def registration_at(event_id: int, user_id: int, status: RegistrationStatus, queued_at: datetime,
                          checked_in_at: datetime | None = None) -> int:
    # raw: a registration with a chosen status and queue time (the service stamps now and decides the status).
    async with db.write_session() as session, session.begin():
        return (await session.execute(insert(Registration).returning(Registration.id), {
            "event_id": event_id, "user_id": user_id, "status": status, "queued_at": queued_at,
            "checked_in_at": checked_in_at})).scalar_one()

