"""Alembic environment: async engine, the site's settings, SQLAlchemy models as the target.

Two ways in: ``manage.py migrate`` (no running loop: we run one) and tests or code already inside a loop,
which pass a sync connection in ``config.attributes["connection"]`` (from ``AsyncConnection.run_sync``).
"""

import asyncio
import os

from alembic import context
from sqlalchemy.pool import NullPool

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hyperion.settings")
import django  # noqa: E402

django.setup()

from events.models import Base  # noqa: E402
from hyperion.db import engine_create  # noqa: E402

config = context.config
target_metadata = Base.metadata


# Made by hand in the migrations (PostgreSQL-only expressions): autogenerate must not drop them.
HAND_MADE_OBJECTS = {"ix_events_search"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    return name not in HAND_MADE_OBJECTS


def run_migrations_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        # The models' own column type (UTCDateTime) is written as the package exports it, as every migration
        # so far names it, not by the module of events/models/ that defines it.
        user_module_prefix="events.models.",
        # SQLite alters a table by copying it: Alembic's batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        # SQLite runs DDL inside our BEGIN IMMEDIATE (hyperion/db.py): migrate all or nothing there too.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_async(url) -> None:
    engine = engine_create(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations_with)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported: run manage.py migrate.")

connection = config.attributes.get("connection")
if connection is not None:
    run_migrations_with(connection)
else:
    asyncio.run(run_migrations_async(config.attributes.get("database_url")))
