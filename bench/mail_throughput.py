"""E-mail throughput: cancelling an event with 2,000 registrations returns at once, and the outbox sender
delivers the 2,000 messages to a local SMTP server (aiosmtpd on loopback) within a minute.

Run: ``.venv/bin/python -m bench.mail_throughput`` (PostgreSQL at $HYPERION_BENCH_PG_URL or
127.0.0.1:5432; it creates and drops its own database). Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import platform
import secrets
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hyperion.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("DEBUG", "false")

RESULTS = Path(__file__).resolve().parent / "results" / "mail.md"
REGISTRANTS = 2000


async def main() -> None:
    import asyncpg
    import django
    from sqlalchemy import make_url

    admin = make_url(os.environ.get("HYPERION_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    name = "hyperion_bench_mail"
    connection = await asyncpg.connect(host=admin.host, port=admin.port or 5432, user=admin.username,
                                       password=admin.password, database=admin.database or "postgres")
    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await connection.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    os.environ["DATABASE_URL"] = url
    django.setup()
    from django.conf import settings
    from sqlalchemy import func, insert, select

    from events.models import (
        Association,
        Event,
        EventStatus,
        OutboxMessage,
        Registration,
        RegistrationStatus,
        User,
        utcnow,
    )
    from events.notifications import mailer
    from events.rules.permissions import Actor
    from events.staff import services as staff_services
    from hyperion import db, schema
    from tests.mail import SmtpServer

    await asyncio.to_thread(schema.upgrade, "head", url)
    smtp = SmtpServer()
    smtp.start()
    settings.EMAIL_CONFIG = smtp.config
    try:
        async with db.engine_scope(url):
            now = utcnow()
            async with db.write_session() as session, session.begin():
                association_id = (await session.execute(insert(Association).returning(Association.id), {
                    "slug": "bde", "name": "BDE", "description": ""})).scalar_one()
                staff_id = (await session.execute(insert(User).returning(User.id), {
                    "email": "staff@bench.test", "display_name": "Staff", "password_hash": "!",
                    "is_staff": True})).scalar_one()
                event_id = (await session.execute(insert(Event).returning(Event.id), {
                    "slug": "gala", "title": "Gala", "association_id": association_id, "category": "party",
                    "starts_at": now + timedelta(days=20), "ends_at": now + timedelta(days=20, hours=5),
                    "capacity": None, "status": EventStatus.APPROVED})).scalar_one()
                user_ids = (await session.execute(insert(User).returning(User.id, sort_by_parameter_order=True), [
                    {"email": f"s{n}@bench.test", "display_name": f"Student {n}", "password_hash": "!"}
                    for n in range(REGISTRANTS)])).scalars().all()
                await session.execute(insert(Registration), [
                    {"event_id": event_id, "user_id": user_id, "status": RegistrationStatus.CONFIRMED}
                    for user_id in user_ids])
            started = time.perf_counter()
            async with db.write_session() as session:
                await staff_services.event_transition(session, actor=Actor(staff_id, True, {}), event_id=event_id,
                                                      action="cancel", reason="Salle indisponible")
            cancel_seconds = time.perf_counter() - started
            async with db.read_session() as session:
                queued = (await session.execute(select(func.count(OutboxMessage.id)).where(
                    OutboxMessage.kind == "event.cancelled"))).scalar_one()
            started = time.perf_counter()
            report = await mailer.send_all_due()
            send_seconds = time.perf_counter() - started
    finally:
        smtp.stop()
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()
    received = len(smtp.inbox.messages)
    lines = [
        "# E-mail throughput (outbox → aiosmtpd on loopback)",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; "
        f"sender concurrency {settings.OUTBOX_SMTP_CONCURRENCY}, batch {settings.OUTBOX_BATCH_SIZE}.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| registrations on the cancelled event | {REGISTRANTS} |",
        f"| time for the cancel request's transaction (writes {queued} outbox rows) | {cancel_seconds * 1000:.0f} ms |",
        f"| messages delivered | {received} (sent {report.sent}, retried {report.retried}, failed {report.failed}) |",
        f"| time to deliver them all | {send_seconds:.1f} s ({received / send_seconds:.0f} messages/s) |",
        f"| within a minute | {'yes' if send_seconds < 60 and received == REGISTRANTS else 'NO'} |",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
