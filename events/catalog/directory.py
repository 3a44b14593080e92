"""The associations' directory: every association by name, with its number of events to come and the next one
(one statement, built once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import aliased

from events.models import Association, Event
from events.rules import visibility
from hyperion import db
from hyperion.images import ImageRef


@dataclass(frozen=True, slots=True)
class DirectoryRow:
    """One association in the directory: who it is, and what it does next."""

    slug: str
    name: str
    description: str
    upcoming: int  # its published events going ahead, not over yet
    next_title: str | None
    next_slug: str | None
    next_starts_at: datetime | None
    next_ends_at: datetime | None
    id: int = 0
    logo: ImageRef | None = None
    logo_alt: str = ""


def _directory():
    coming = (Event.association_id == Association.id, visibility.going_ahead(), visibility.shown_to_all(),
              Event.ends_at >= bindparam("now", type_=Event.ends_at.type))
    next_id = (select(Event.id).where(*coming).order_by(Event.starts_at, Event.id).limit(1)
               .correlate(Association).scalar_subquery())
    upcoming = select(func.count(Event.id)).where(*coming).correlate(Association).scalar_subquery()
    following = aliased(Event, name="following")
    return (
        select(Association.id, Association.slug, Association.name, Association.description, Association.logo,
               Association.logo_alt, upcoming.label("upcoming"),
               following.title, following.slug.label("next_slug"), following.starts_at, following.ends_at)
        .outerjoin(following, following.id == next_id)
        .order_by(func.lower(Association.name), Association.id)
    )


_DIRECTORY = _directory()  # built once


async def directory(session: db.Reader, *, now: datetime) -> list[DirectoryRow]:
    """Every association, by name, with its number of events to come and the next one: one statement."""
    return [DirectoryRow(row.slug, row.name, row.description, row.upcoming, row.title, row.next_slug,
                         row.starts_at, row.ends_at, row.id, ImageRef.parse(row.logo), row.logo_alt)
            for row in await session.execute(_DIRECTORY, {"now": now})]
