"""A member's own hidden events on the shared lists: which of a student's associations keep published events
hidden from others (``restrictions.may_see``), so that the home page and the calendar show those events to
their members and to nobody else.

The home page's and the calendar's content is a stored fragment shared by everyone who asks the same thing
(views/public.py). A student whose associations hide nothing gets the fragment every visitor gets; a member
of some that do gets the one keyed by exactly those associations (``scope``), built with their events. Whoever
shares that fragment is a member of every association in its key, so it never shows anyone another's
members' events; and the students with a scope are few, as are their fragments.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from events.models import Event
from events.rules import visibility
from hyperion import db, pagecache

_HIDING = select(Event.association_id).where(visibility.published(), ~visibility.shown_to_all()).distinct()


async def hiding_associations(session: db.Reader) -> frozenset[int]:
    """The associations with a published event hidden from others."""
    return frozenset((await session.execute(_HIDING)).scalars())


async def _hiding_read() -> frozenset[int]:
    async with db.read_connection() as connection:
        return await hiding_associations(connection)


async def scope(association_ids: Collection[int]) -> tuple[int, ...]:
    """The student's associations (``association_ids``) that hide events from others, sorted: what the lists
    they see add and are keyed by. No read for a student of no association; else the set of associations that
    hide events, kept in the page store until the lists change."""
    if not association_ids:
        return ()
    hiding = await pagecache.fragment(("hiding_associations",), _hiding_read)
    return tuple(sorted(hiding.intersection(association_ids)))
