"""``manage.py loaddemo``: fill the database with the demo data set (idempotent)."""

import secrets

from django.conf import settings
from django.core.management.base import CommandError
from sqlalchemy import select

from events.accounts.auth import password_hash, password_matches
from events.management.base import AsyncCommand
from events.models import User
from events.ops import demo, demo_images
from hyperion import db

DEV_PASSWORDS = {"staff": "demo-staff-password", "manager": "demo-manager-password",
                 "editor": "demo-editor-password", "student": "demo-student"}


class Command(AsyncCommand):
    help = ("Load demo associations, events, students and registrations (does nothing if already loaded); "
            "in DEBUG, print the demo accounts and their passwords either way.")

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
                editor_password_hash=hashes["editor"],
                student_password_hash=hashes["student"],
                students=students,
                events=events,
                progress=progress,
            )
            if result.loaded:
                # After the data's transaction: each picture is its own write, through the services.
                pictures = await demo_images.demo_images_load(session, progress=progress)
        if result.loaded:
            self.stdout.write(self.style.SUCCESS(
                "Demo loaded: {associations} associations, {users} users, {events} events, "
                "{registrations} registrations, ".format(**result.counts)
                + f"{pictures.logos} logos, {pictures.posters} posters."))
            self._print_accounts(demo.ACCOUNTS, passwords)
            return
        self.stdout.write("Demo data already present: nothing to do.")
        if settings.DEBUG:
            # make run prints the accounts every time, not only on the day the demo was loaded: when it was
            # loaded in development, with the known passwords (checked on the staff account).
            async with db.read_session() as session:
                accounts = await demo.demo_accounts_present(session)
                staff_hash = await session.scalar(select(User.password_hash).where(User.email == demo.STAFF_EMAIL))
            if await password_matches(DEV_PASSWORDS["staff"], staff_hash):
                self._print_accounts(accounts, DEV_PASSWORDS)

    def _print_accounts(self, accounts: list[demo.DemoAccount], passwords: dict[str, str]) -> None:
        self.stdout.write("Demo accounts (e-mail / password):")
        for account in accounts:
            self.stdout.write(f"  {account.email:<27} / {passwords[account.kind]:<22}  {account.what}")
        self.stdout.write(f"  and every generated student (…@etu.hyperion.test) / {passwords['student']}")
