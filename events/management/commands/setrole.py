"""``manage.py setrole EMAIL ASSOCIATION_SLUG ROLE``: give an account a role in an association, or remove it."""

from __future__ import annotations

from django.core.management.base import CommandError, no_translations

from events import errors
from events.feeds import queries as feed_queries
from events.management.base import AsyncCommand
from events.models import Role
from events.rules.emails import normalize_email
from events.staff import people as staff_people
from hyperion import db

NO_ROLE = "none"


class Command(AsyncCommand):
    # Like createsuperuser, an operator task skips the system checks: they cost seconds a run, and
    # `manage.py check` is where they belong.
    requires_system_checks: list[str] = []
    help = (
        "Make the account with EMAIL a member, editor or manager of the association ASSOCIATION_SLUG, or "
        "remove it from the association with 'none'. Editors write events, managers also publish changes, "
        "cancel and run attendees and roles."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="e-mail address of an existing account")
        parser.add_argument("association", metavar="association_slug", help="slug of the association")
        parser.add_argument("role", choices=[*(role.value for role in Role), NO_ROLE],
                            help="the new role; 'none' removes the membership")

    @no_translations
    def handle(self, *args, **options):
        return super().handle(*args, **options)

    async def ahandle(self, *args, email, association, role, **options):
        async with db.read_session() as session:
            found = await feed_queries.association_by_slug(session, slug=association)
        if found is None:
            raise CommandError(f"no association with the slug {association!r}")
        async with db.write_session() as session:
            try:
                await staff_people.role_set(session, actor=None, association_id=found.id, email=email,
                                              role=None if role == NO_ROLE else Role(role))
            except staff_people.UserNotFound:
                raise CommandError(f"no account with the e-mail address {email!r}") from None
            except errors.NotFound:  # the association was deleted in between
                raise CommandError(f"no association with the slug {association!r}") from None
        email = normalize_email(email)
        if role == NO_ROLE:
            self.stdout.write(self.style.SUCCESS(f"{email} has no role in {found.name} ({found.slug}) now."))
        else:
            self.stdout.write(self.style.SUCCESS(f"{email} is {role} of {found.name} ({found.slug})."))
