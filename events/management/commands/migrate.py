"""``manage.py migrate``: bring the schema to the latest Alembic revision (or to the one given)."""

from alembic.util import CommandError as AlembicError
from django.core.management.base import BaseCommand, CommandError

from events.management.base import database_errors
from hyperion import schema


class Command(BaseCommand):
    # Django's check compares the two commands' ORM autodetectors; ours have none.
    autodetector = None
    help = "Apply the Alembic migrations (the schema is SQLAlchemy's; Django's ORM is not used)."

    def add_arguments(self, parser):
        parser.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
        parser.add_argument(
            "--downgrade", action="store_true", help="go down to REVISION ('base' removes every table)"
        )

    def handle(self, *args, revision, downgrade, **options):
        try:
            with database_errors():
                if downgrade:
                    schema.downgrade(revision)
                else:
                    schema.upgrade(revision)
        except AlembicError as exc:
            raise CommandError(str(exc)) from None
        where = "the latest revision" if revision == "head" else f"revision {revision}"
        self.stdout.write(self.style.SUCCESS(f"Schema at {where}."))
