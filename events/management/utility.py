"""``manage.py``'s command line: Django's, minus the commands that cannot work on this site.

The site has no Django ORM (``DATABASES`` is empty; the schema is SQLAlchemy's, migrated by Alembic), so
Django's database commands (dbshell, flush, dumpdata, showmigrations, ...) would only end in a traceback
about ``settings.DATABASES``. They are left out of ``manage.py help``, and running one fails the way every
command of the site fails: a one-line ``CommandError`` saying why and what to use instead, exit code 1.
A settings error (say, no SECRET_KEY with DEBUG off) is one line too, not a traceback.
"""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.management import ManagementUtility
from django.core.management.base import BaseCommand, CommandError

_ALEMBIC = "the migrations are Alembic's (migrations/versions/)"

# Django's commands that need its ORM (or its test runner), and what to use here instead.
UNAVAILABLE = {
    "createcachetable": "it makes the table of Django's database cache; the site caches pages in memory "
                        "(PAGE_CACHE_SECONDS).",
    "dbshell": "open the database with psql (PostgreSQL) or sqlite3 (the SQLite file of DATABASE_URL).",
    "dumpdata": "it dumps Django models; back up with pg_dump or sqlite3's .backup, or export the events with "
                "manage.py exportics.",
    "loaddata": "it loads Django fixtures; load the demo with manage.py loaddemo, or events with manage.py "
                "importics.",
    "flush": "it empties Django models' tables; to start from an empty database run manage.py migrate base "
             "--downgrade, then manage.py migrate.",
    "sqlflush": "it prints Django's flush statements; to start from an empty database run manage.py migrate "
                "base --downgrade, then manage.py migrate.",
    "inspectdb": "it writes Django models; the site's models are SQLAlchemy's (events/models/).",
    "showmigrations": f"{_ALEMBIC}: see them with .venv/bin/alembic history and .venv/bin/alembic current; "
                      "manage.py migrate applies them.",
    "sqlmigrate": f"{_ALEMBIC}: each file there holds its operations; manage.py migrate applies them.",
    "squashmigrations": f"{_ALEMBIC}: write a new one with manage.py makemigrations -m MESSAGE.",
    "optimizemigration": f"{_ALEMBIC}: write a new one with manage.py makemigrations -m MESSAGE.",
    "sqlsequencereset": "it resets Django models' sequences; the tables are SQLAlchemy's (events/models/).",
    "test": "the tests run under pytest: make test, or .venv/bin/python -m pytest --db sqlite.",
    "testserver": "it serves Django fixtures from a test database; run manage.py loaddemo, then manage.py "
                  "runserver.",
}


class UnavailableCommand(BaseCommand):
    """Stands for one of Django's commands that cannot work here: fails at once, in one line, whatever the
    arguments (its own options are not parsed, so none of them can end in another error first)."""

    requires_system_checks: list[str] = []

    def __init__(self, name: str, reason: str):
        super().__init__()
        self.name = name
        self.reason = reason
        self.help = f"Not available: Django's {name} needs Django's ORM or test runner, which this site does not " \
                    f"use. {reason}"

    def run_from_argv(self, argv):
        super().run_from_argv(argv[:2])

    def handle(self, *args, **options):
        raise CommandError(f"{self.name} is not available on this site (no Django ORM or test runner): "
                           f"{self.reason}")


class Utility(ManagementUtility):
    def fetch_command(self, subcommand):
        if subcommand in UNAVAILABLE:
            return UnavailableCommand(subcommand, UNAVAILABLE[subcommand])
        return super().fetch_command(subcommand)

    def main_help_text(self, commands_only=False):
        # Command names are the lines indented by four spaces (or every line with --commands).
        return "\n".join(
            line for line in super().main_help_text(commands_only).split("\n")
            if not ((commands_only or line.startswith("    ")) and line.strip() in UNAVAILABLE)
        )


def execute_from_command_line(argv: list[str] | None = None) -> None:
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads the settings: their errors are the user's to fix
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"ImproperlyConfigured: {exc}\n")
        sys.exit(1)
    Utility(argv).execute()
