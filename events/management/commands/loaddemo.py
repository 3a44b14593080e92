"""``manage.py loaddemo``: fill the database with the demo data set (idempotent)."""

import secrets

from django.conf import settings
from django.core.management.base import CommandError

from events import demo
from events.auth import password_hash
from events.management.base import AsyncCommand
from hyperion import db

DEV_PASSWORDS = {"staff": "demo-staff-password", "manager": "demo-manager-password", "student": "demo-student"}


class Command(AsyncCommand):
    help = "Load demo associations, events, students and registrations (does nothing if already loaded)."

    def add_arguments(self, parser):
        parser.add_argument("--students", type=int, default=2000)
        parser.add_argument("--events", type=int, default=300)

    async def ahandle(self, *args, students, events, **options):
        if students < 20 or events < 1:
            raise CommandError("--students must be at least 20 and --events at least 1.")
        # Known passwords in development, random ones otherwise: a demo never opens a guessable account.
        passwords = DEV_PASSWORDS if settings.DEBUG else {role: secrets.token_urlsafe(12) for role in DEV_PASSWORDS}
        hashes = {role: await password_hash(password) for role, password in passwords.items()}

        def progress(step: str, done: int, total: int) -> None:
            width = 30
            filled = width * done // max(total, 1)
            self.stdout.write(f"\r  {step:<14} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
            if done >= total:
                self.stdout.write("")
            self.stdout.flush()

        async with db.write_session() as session:
            result = await demo.demo_load(
                session,
                staff_password_hash=hashes["staff"],
                manager_password_hash=hashes["manager"],
                student_password_hash=hashes["student"],
                students=students,
                events=events,
                progress=progress,
            )
        if not result.loaded:
            self.stdout.write("Demo data already present: nothing to do.")
            return
        self.stdout.write(self.style.SUCCESS(
            "Demo loaded: {associations} associations, {users} users, {events} events, "
            "{registrations} registrations.".format(**result.counts)))
        self.stdout.write(f"  staff account:   {demo.STAFF_EMAIL} / {passwords['staff']}")
        self.stdout.write(f"  BDE manager:     {demo.MANAGER_EMAIL} / {passwords['manager']}")
        self.stdout.write(f"  any student, e.g. {result.sample_student} / {passwords['student']}")
