"""Demo data for a French engineering school's student association: associations, events, students.

Deterministic (a seeded generator), inserted in bulk through SQLAlchemy Core: ~2,000 students and 300
events load in seconds. Idempotent: a database that already holds the demo is left as it is.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.text import slugify
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.localtime import site_zone
from events.models import (
    Association,
    Event,
    EventStatus,
    Membership,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.rules import visibility
from events.rules.seats import SeatState

ASSOCIATIONS = [
    ("bde", "BDE", "Le Bureau des Élèves : soirées, gala, week-end d'intégration et vie du campus.", "party"),
    ("bds", "BDS", "Le Bureau des Sports : tournois, entraînements et compétitions inter-écoles.", "sport"),
    ("bda", "BDA", "Le Bureau des Arts : expositions, concerts, sorties culturelles.", "culture"),
    ("forum", "Forum Entreprises", "Rencontres avec les entreprises, ateliers CV et conférences métiers.", "career"),
    ("robotique", "Club Robotique", "Conception de robots pour la Coupe de France de robotique.", "workshop"),
    ("photo", "Club Photo", "Sorties photo, ateliers de retouche et exposition annuelle.", "workshop"),
    ("junior", "Junior-Entreprise", "Missions d'étude pour de vraies entreprises, formations au conseil.", "career"),
    ("gala", "Comité Gala", "L'organisation du gala annuel de l'école.", "party"),
    ("oeno", "Club Œnologie", "Dégustations commentées et visites de domaines (avec modération).", "culture"),
    ("theatre", "Troupe de Théâtre", "Ateliers d'improvisation et la pièce de fin d'année.", "culture"),
    ("musique", "Club Musique", "Jam sessions, groupes et la fête de la musique du campus.", "culture"),
    ("info", "Club Informatique", "Hackathons, ateliers Linux et conférences techniques.", "conference"),
    ("huma", "Ingénieurs Solidaires", "Projets humanitaires, collectes et maraudes.", "charity"),
    ("cine", "Ciné-Club", "Projections, débats et nuit du cinéma.", "culture"),
    ("jeux", "Club Jeux", "Jeux de société, jeux de rôle et tournois e-sport.", "gaming"),
]

EVENT_IDEAS = {
    "party": ["Soirée d'intégration", "Soirée à thème", "Afterwork du jeudi", "Soirée Erasmus", "Apéro de rentrée"],
    "sport": ["Tournoi de foot en salle", "Course du campus", "Initiation escalade", "Match de rugby inter-écoles",
              "Tournoi de volley"],
    "culture": ["Visite du musée d'Orsay", "Concert au foyer", "Sortie à l'opéra", "Soirée cinéma", "Atelier théâtre"],
    "career": ["Atelier CV et LinkedIn", "Conférence : métiers de l'énergie", "Speed-meeting entreprises",
               "Simulation d'entretien", "Table ronde des alumni"],
    "workshop": ["Atelier soudure", "Initiation Arduino", "Atelier retouche photo", "Sortie photo de nuit"],
    "conference": ["Conférence cybersécurité", "Hackathon 24 h", "Install party Linux", "Conférence IA et éthique"],
    "charity": ["Collecte alimentaire", "Maraude du mardi", "Don du sang", "Vente de crêpes solidaire"],
    "gaming": ["Soirée jeux de société", "Tournoi Smash Bros", "Campagne de jeu de rôle", "LAN party"],
    "trip": ["Week-end ski", "Week-end d'intégration", "Sortie au Mont-Saint-Michel"],
}
PLACES = ["Foyer des élèves", "Amphi A", "Amphi B", "Gymnase", "Salle 104", "Cafétéria", "Bâtiment C, hall",
          "Parvis", "Médiathèque", "Salle polyvalente"]
FIRST_NAMES = ["Camille", "Léa", "Lucas", "Hugo", "Chloé", "Inès", "Louis", "Emma", "Jules", "Manon", "Nathan",
               "Zoé", "Enzo", "Sarah", "Théo", "Clara", "Maël", "Jade", "Arthur", "Lina", "Noé", "Élise",
               "Raphaël", "Anaïs", "Gabriel", "Océane", "Yanis", "Margaux", "Adam", "Louise"]
LAST_NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
              "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
              "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez", "Nguyen"]

PROMOS = (2026, 2027, 2028, 2029)  # the students' promo years (the youngest: the first-years)
STAFF_EMAIL = "staff@hyperion.test"
MANAGER_EMAIL = "manager.bde@hyperion.test"
EDITOR_EMAIL = "editeur.bde@hyperion.test"
STUDENT_EMAIL = "etudiante@hyperion.test"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    email: str
    display_name: str
    what: str  # what the account can do, for the list make run prints
    kind: str  # "staff", "manager", "editor" or "student": which demo password it has


# The named accounts of the demo, one per kind of user; the ~2,000 generated students share the student's
# password (some of them are editors or members of an association, as in real life).
ACCOUNTS = [
    DemoAccount(STUDENT_EMAIL, "Étudiante Démo", "a plain student, no association role", "student"),
    DemoAccount(EDITOR_EMAIL, "Éric Éditeur", "editor of the BDE: writes and submits its events", "editor"),
    DemoAccount(MANAGER_EMAIL, "Alice Responsable",
                "manager of the BDE: also published events, attendees, members' roles", "manager"),
    DemoAccount(STAFF_EMAIL, "Équipe BDE (staff)", "staff: approves submitted events, runs everything", "staff"),
]


@dataclass(frozen=True, slots=True)
class DemoResult:
    loaded: bool
    counts: dict[str, int]


async def demo_present(session: AsyncSession) -> bool:
    return (await session.execute(select(User.id).where(User.email == STAFF_EMAIL))).first() is not None


async def demo_accounts_present(session: AsyncSession) -> list[DemoAccount]:
    """The named demo accounts in the database (one loaded before an account was added lacks it)."""
    emails = set((await session.execute(
        select(User.email).where(User.email.in_([account.email for account in ACCOUNTS]))
    )).scalars())
    return [account for account in ACCOUNTS if account.email in emails]


async def demo_load(
    session: AsyncSession,
    *,
    staff_password_hash: str,
    manager_password_hash: str,
    student_password_hash: str,
    editor_password_hash: str | None = None,
    students: int = 2000,
    events: int = 300,
    progress: Callable[[str, int, int], None] = lambda step, done, total: None,
    seed: int = 2026,
) -> DemoResult:
    """Insert the demo data set in one transaction (nothing half-loaded if it fails)."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets  # nosec B311
    zone = ZoneInfo(settings.TIME_ZONE)
    now = utcnow()
    counts = {"associations": 0, "users": 0, "events": 0, "registrations": 0}
    async with session.begin():
        if await demo_present(session):
            return DemoResult(loaded=False, counts=counts)

        association_ids = {}
        for slug, name, description, _category in ASSOCIATIONS:
            association_ids[slug] = (
                await session.execute(
                    insert(Association).returning(Association.id),
                    {"slug": slug, "name": name, "description": description, "created_at": now},
                )
            ).scalar_one()
        counts["associations"] = len(association_ids)
        progress("associations", len(association_ids), len(ASSOCIATIONS))

        hashes = {"staff": staff_password_hash, "manager": manager_password_hash,
                  "editor": editor_password_hash or manager_password_hash, "student": student_password_hash}
        named = {}
        for account in ACCOUNTS:
            named[account.email] = (await session.execute(insert(User).returning(User.id), {
                "email": account.email, "display_name": account.display_name,
                "password_hash": hashes[account.kind], "is_staff": account.kind == "staff",
                "is_active": True, "language": "fr", "created_at": now, "email_verified_at": now,
                **({"promo": 2027} if account.kind == "student" else {}),
            })).scalar_one()
        await session.execute(insert(Membership), [
            {"user_id": named[MANAGER_EMAIL], "association_id": association_ids["bde"], "role": Role.MANAGER,
             "created_at": now},
            {"user_id": named[EDITOR_EMAIL], "association_id": association_ids["bde"], "role": Role.EDITOR,
             "created_at": now},
        ])

        student_rows = []
        for number in range(students):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            student_rows.append({
                "email": f"{slugify(first)}.{slugify(last)}.{number}@etu.hyperion.test",
                "display_name": f"{first} {last}",
                "password_hash": student_password_hash,
                "promo": rng.choice(PROMOS),
                "is_staff": False, "is_active": True, "language": "fr", "created_at": now, "email_verified_at": now,
            })
        student_ids: list[int] = []
        for start in range(0, len(student_rows), 500):
            batch = student_rows[start:start + 500]
            result = await session.execute(insert(User).returning(User.id, sort_by_parameter_order=True), batch)
            student_ids.extend(result.scalars().all())
            progress("students", len(student_ids), students)
        counts["users"] = len(student_ids) + len(ACCOUNTS)

        # A few students help run associations: editors and members.
        membership_rows = []
        for index, slug in enumerate(association_ids):
            editor = student_ids[index * 7 % len(student_ids)]  # as many as 2,000 students or as few as 20
            membership_rows.append({"user_id": editor, "association_id": association_ids[slug],
                                    "role": Role.EDITOR, "created_at": now})
            for member in rng.sample(student_ids[len(student_ids) // 10:], 10):
                membership_rows.append({"user_id": member, "association_id": association_ids[slug],
                                        "role": Role.MEMBER, "created_at": now})
        unique_memberships = {(row["user_id"], row["association_id"]): row for row in membership_rows}
        await session.execute(insert(Membership), list(unique_memberships.values()))

        event_rows: list[dict[str, Any]] = []
        used_slugs: set[str] = set()
        today = now.astimezone(zone).date()
        for number in range(events):
            slug_assoc, assoc_name, _description, main_category = rng.choice(ASSOCIATIONS)
            category = main_category if rng.random() < 0.7 else rng.choice(list(EVENT_IDEAS))
            title = rng.choice(EVENT_IDEAS[category])
            day = today + timedelta(days=rng.randint(-60, 90))
            if category == "trip":
                starts = datetime.combine(day, time(8, 0), tzinfo=zone)
                ends = starts + timedelta(days=rng.choice([1, 2]), hours=10)
                all_day = True
            elif rng.random() < 0.06:
                starts = datetime.combine(day, time(0, 0), tzinfo=zone)
                ends = starts + timedelta(hours=23, minutes=59)
                all_day = True
            else:
                starts = datetime.combine(day, time(rng.choice([12, 14, 18, 19, 20, 21]), rng.choice([0, 30])),
                                          tzinfo=zone)
                ends = starts + timedelta(hours=rng.choice([1, 2, 3, 4, 5]))
                all_day = False
            roll = rng.random()
            if roll < 0.05:
                status = EventStatus.CANCELLED
            elif roll < 0.10:
                status = EventStatus.SUBMITTED
            elif roll < 0.13:
                status = EventStatus.DRAFT
            elif roll < 0.15:
                status = EventStatus.DECLINED
            else:
                status = EventStatus.APPROVED
            slug = slugify(f"{title} {assoc_name} {day:%Y-%m-%d}")[:110]
            if slug in used_slugs:
                slug = f"{slug}-{number}"
            used_slugs.add(slug)
            capacity = rng.choice([None, 20, 30, 40, 50, 80, 100, 150, 200])
            event_rows.append({
                "slug": slug,
                "title": title,  # lists and pages name the association beside the title already
                "description": f"{title}, organisé par {assoc_name}.\n\nOuvert à tous les étudiants de l'école. "
                               f"Pensez à venir un peu en avance !",
                "association_id": association_ids[slug_assoc],
                "category": category,
                "location": rng.choice(PLACES),
                "starts_at": starts.astimezone(now.tzinfo), "ends_at": ends.astimezone(now.tzinfo),
                "all_day": all_day,
                "capacity": capacity,
                "registration_opens_at": (starts - timedelta(days=30)).astimezone(now.tzinfo),
                "registration_closes_at": None,
                "unregistration_closes_at": None,
                "status": status,
                "decision_reason": "Date en conflit avec le gala, merci de proposer une autre date."
                if status == EventStatus.DECLINED else
                ("Salle indisponible, nous sommes désolés." if visibility.is_cancelled(status) else ""),
                "created_by_id": student_ids[list(association_ids).index(slug_assoc) * 7 % len(student_ids)],
                "sequence": 0, "created_at": now, "updated_at": now, "lottery_minutes": None,
                # A seat freed at an event with seats is offered to the first in line for a day.
                "offer_hours": 24 if capacity else None,
                "members_open_at": None, "promos_open_at": None, "priority_promos": None,
            })
        # One popular event opens by lottery tomorrow at noon (Paris): a 15-minute window, nobody entered yet.
        lottery = next((row for row in event_rows if visibility.goes_ahead(row["status"]) and row["capacity"]
                        and row["starts_at"] > now + timedelta(days=10)), None)
        if lottery is not None:
            noon = (now.astimezone(site_zone()) + timedelta(days=1)).replace(hour=12, minute=0, second=0,
                                                                                microsecond=0)
            lottery.update(registration_opens_at=noon.astimezone(now.tzinfo), lottery_minutes=15)
        # Another opens for everyone in three days at noon, a day earlier for its association's members and for
        # the first-years (the youngest promo of the demo).
        member_first = next((row for row in event_rows if row is not lottery and visibility.goes_ahead(row["status"])
                             and row["capacity"] and row["starts_at"] > now + timedelta(days=10)), None)
        if member_first is not None:
            noon = (now.astimezone(site_zone()) + timedelta(days=3)).replace(hour=12, minute=0, second=0,
                                                                                microsecond=0)
            member_first.update(registration_opens_at=noon.astimezone(now.tzinfo),
                                members_open_at=(noon - timedelta(days=1)).astimezone(now.tzinfo),
                                promos_open_at=(noon - timedelta(days=1)).astimezone(now.tzinfo),
                                priority_promos=[max(PROMOS)])
        result = await session.execute(insert(Event).returning(Event.id, sort_by_parameter_order=True), event_rows)
        event_ids = result.scalars().all()
        counts["events"] = len(event_ids)
        progress("events", len(event_ids), events)

        registration_rows = []
        queued = now - timedelta(days=20)
        for event_id, row in zip(event_ids, event_rows, strict=True):
            if not visibility.is_published(row["status"]) or row["lottery_minutes"] or row["members_open_at"]:
                continue
            capacity = row["capacity"]
            if capacity is None:
                wanted = rng.randint(5, 120)
            elif rng.random() < 0.2:
                wanted = capacity + rng.randint(1, 15)  # full, with a waitlist
            else:
                wanted = rng.randint(0, capacity)
            # The plain demo student registers like the others (no role, so only through "My events").
            registrants = [*student_ids, named[STUDENT_EMAIL]]
            for position, user_id in enumerate(rng.sample(registrants, min(wanted, len(registrants)))):
                confirmed = not SeatState(capacity, taken=position).is_full  # seats given in arrival order
                queued += timedelta(seconds=1)
                registration_rows.append({
                    "event_id": event_id, "user_id": user_id,
                    "status": RegistrationStatus.CONFIRMED if confirmed else RegistrationStatus.WAITLISTED,
                    "queued_at": queued, "created_at": queued, "updated_at": queued,
                })
        for start in range(0, len(registration_rows), 2000):
            await session.execute(insert(Registration), registration_rows[start:start + 2000])
            progress("registrations", min(start + 2000, len(registration_rows)), len(registration_rows))
        counts["registrations"] = len(registration_rows)
    return DemoResult(loaded=True, counts=counts)
