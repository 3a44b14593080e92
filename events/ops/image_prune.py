"""Stored images no poster or logo names any more (replaced or removed), deleted once they are old enough.

An image's files stay after it is replaced: their addresses are immutable and may still be read for a while
(an e-mail, a share preview a chat app cached, a page a browser keeps). Past ``older_than`` they are
deleted. Files written less than that ago are kept whatever the database says, which also spares an upload
stored a moment ago whose transaction has not committed yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, union

from events.models import Association, Event
from hyperion import db, images


@dataclass(frozen=True, slots=True)
class PruneReport:
    kept: int  # files of images in use, or too recent to tell
    deleted: list[str]


async def image_hashes_in_use(session: db.Reader) -> set[str]:
    keys = (await session.execute(union(select(Event.poster).where(Event.poster.is_not(None)),
                                        select(Association.logo).where(Association.logo.is_not(None))))).scalars()
    return {ref.hash for key in keys if (ref := images.ImageRef.parse(key)) is not None}


def images_prune(*, in_use: set[str], older_than: datetime, dry_run: bool = False) -> PruneReport:
    """Delete (unless ``dry_run``) the stored files of images not ``in_use`` and last written before
    ``older_than``. Blocking storage calls: for the command line, never a request."""
    storage = images.storage()
    try:
        _folders, names = storage.listdir(images.FOLDER)
    except FileNotFoundError:  # nothing was ever uploaded
        return PruneReport(0, [])
    kept, deleted = 0, []
    for name in sorted(names):
        path = f"{images.FOLDER}/{name}"
        image_hash = images.hash_of(path)
        if image_hash is None:
            continue  # not an image's file (an operator's, say): not ours to delete
        if image_hash in in_use or storage.get_modified_time(path) >= older_than:
            kept += 1
            continue
        if not dry_run:
            storage.delete(path)
        deleted.append(path)
    return PruneReport(kept, deleted)
