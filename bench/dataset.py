"""The benchmark's data set: 10,000 events, 20,000 students, 100,000 registrations, plus logged-in
sessions and CSRF pairs for the load scripts. Generated in bulk (COPY-speed inserts) in under a minute."""

from __future__ import annotations

import hashlib
import random
import secrets
from datetime import timedelta

from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from sqlalchemy import insert, text

from events.models import (
    Association,
    AuthSession,
    Event,
    EventStatus,
    Registration,
    RegistrationStatus,
    User,
    utcnow,
)
from hyperion import db

CATEGORIES = ["party", "sport", "culture", "conference", "career", "workshop", "charity", "gaming"]


async def dataset_create(*, events: int = 10_000, students: int = 20_000, registrations: int = 100_000,
                         sessions: int = 2_000, rush_capacity: int = 100) -> tuple[dict, dict]:
    """Fill an empty, migrated database. Returns the counts and what the load scripts need (tokens)."""
    rng = random.Random(7)  # noqa: S311 - benchmark data
    now = utcnow()
    async with db.write_session() as session, session.begin():
        association_ids = list((await session.execute(insert(Association).returning(Association.id), [
            {"slug": f"assoc-{n}", "name": f"Association {n}", "description": "", "created_at": now}
            for n in range(30)])).scalars())
        user_ids: list[int] = []
        # The site stores only each feed token's hash; the load scripts need the tokens themselves.
        feed_tokens = [secrets.token_urlsafe(24) for _ in range(students)]
        for start in range(0, students, 5000):
            user_ids += (await session.execute(insert(User).returning(User.id, sort_by_parameter_order=True), [
                {"email": f"student{n}@bench.test", "display_name": f"Student {n}", "password_hash": "!",
                 "promo": 2027, "is_staff": False, "is_active": True, "language": "fr", "created_at": now,
                 "email_verified_at": now,
                 "feed_token_hash": hashlib.sha256(feed_tokens[n].encode()).hexdigest(), "email_opt_outs": []}
                for n in range(start, min(start + 5000, students))])).scalars().all()
        event_rows = []
        for n in range(events):
            starts = now + timedelta(hours=rng.randint(-24 * 60, 24 * 120))
            event_rows.append({
                "slug": f"event-{n}", "title": f"{rng.choice(['Soirée', 'Tournoi', 'Atelier', 'Conférence'])} {n}",
                "description": "Un événement du banc d'essai.", "association_id": rng.choice(association_ids),
                "category": rng.choice(CATEGORIES), "location": "Amphi A", "starts_at": starts,
                "ends_at": starts + timedelta(hours=3), "all_day": False, "capacity": rng.choice([None, 50, 100, 200]),
                "status": EventStatus.APPROVED, "decision_reason": "", "sequence": 0, "created_at": now,
                "updated_at": now})
        event_rows.append({  # the registration rush's event
            "slug": "rush", "title": "Gala (rush)", "description": "", "association_id": association_ids[0],
            "category": "party", "location": "Grand Hall", "starts_at": now + timedelta(days=30),
            "ends_at": now + timedelta(days=30, hours=6), "all_day": False, "capacity": rush_capacity,
            "status": EventStatus.APPROVED, "decision_reason": "", "sequence": 0, "created_at": now,
            "updated_at": now})
        event_ids: list[int] = []
        for start in range(0, len(event_rows), 5000):
            event_ids += (await session.execute(insert(Event).returning(Event.id, sort_by_parameter_order=True),
                                                event_rows[start:start + 5000])).scalars().all()
        rush_id = event_ids[-1]
        pairs: set[tuple[int, int]] = set()
        while len(pairs) < registrations:
            pairs.add((rng.choice(event_ids[:-1]), rng.choice(user_ids)))
        rows = [{"event_id": e, "user_id": u, "status": RegistrationStatus.CONFIRMED, "queued_at": now,
                 "created_at": now, "updated_at": now} for e, u in pairs]
        for start in range(0, len(rows), 10000):
            await session.execute(insert(Registration), rows[start:start + 10000])
        # Seats are counted from rows; the data set may overfill some events: trim to capacity.
        await session.execute(text(
            "UPDATE registrations SET status = 'waitlisted' WHERE id IN (SELECT r.id FROM registrations r "
            "JOIN events e ON e.id = r.event_id WHERE e.capacity IS NOT NULL AND (SELECT count(*) FROM "
            "registrations r2 WHERE r2.event_id = r.event_id AND r2.id <= r.id) > e.capacity)"))
        tokens = [secrets.token_urlsafe(32) for _ in range(sessions)]
        await session.execute(insert(AuthSession), [
            {"token_hash": hashlib.sha256(token.encode()).hexdigest(), "user_id": user_ids[n],
             "created_at": now, "expires_at": now + timedelta(days=2)} for n, token in enumerate(tokens)])
    csrf = []
    for _ in range(sessions):
        secret = _get_new_csrf_string()
        csrf.append([secret, _mask_cipher_secret(secret)])
    slugs = [f"event-{n}" for n in range(0, events, 7)]
    data = {"sessions": tokens, "feeds": feed_tokens[:sessions], "csrf": csrf,
            "slugs": slugs, "rush_event_id": rush_id, "associations": [f"assoc-{n}" for n in range(30)]}
    return {"events": len(event_ids), "students": len(user_ids), "registrations": len(rows)}, data
