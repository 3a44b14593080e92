"""manage.py pruneimages: the files of an image nothing uses any more go once they are old enough; those in use,
and recent ones (a replaced poster's address may still be read), stay."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from sqlalchemy import select

from events.models import Event
from hyperion import db, images
from hyperion.images import ImageRef
from tests import factories
from tests.ops.test_commands import manage
from tests.staff.pages import client_for, team, url


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 500), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def _files_of(ref: ImageRef) -> set[Path]:
    return set(Path(settings.MEDIA_ROOT, images.FOLDER).glob(f"{ref.hash}-*"))


def _note(path: Path) -> Path:
    path.write_text("an operator's note")
    return path


def _age(paths: set[Path], days: int) -> None:
    past = time.time() - days * 86_400
    for path in paths:
        os.utime(path, (past, past))


@pytest.fixture(autouse=True)
def _empty_image_folder():
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            path.unlink()


async def _poster(client, event_id: int, colour) -> ImageRef:
    response = await client.post(url("staff_event_poster", event_id), {
        "image": SimpleUploadedFile("p.jpg", _jpeg(colour), content_type="image/jpeg"), "alt": "A poster"})
    assert response.status_code == 302
    async with db.read_connection() as connection:
        return ImageRef.parse((await connection.execute(select(Event.poster).where(Event.id == event_id))).scalar())


async def test_a_replaced_posters_files_go_once_old_enough_and_the_one_in_use_stays():
    people = await team()
    gala = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    manager = await client_for(people.manager)
    first = await _poster(manager, gala, (200, 40, 40))
    second = await _poster(manager, gala, (40, 200, 40))  # replaces the first
    replaced, in_use = _files_of(first), _files_of(second)
    assert first != second and len(replaced) == len(in_use) == 5

    stray = _note(Path(settings.MEDIA_ROOT, images.FOLDER, "notes.txt"))  # not an image's file: never pruned
    recent = manage("pruneimages")  # the replaced files are recent: kept
    assert recent.returncode == 0 and "Deleted 0 file(s)" in recent.stdout
    assert all(path.exists() for path in replaced | in_use)

    _age(replaced | in_use | {stray}, days=40)
    listed = manage("pruneimages", "--dry-run")
    assert "Would delete 5 file(s)" in listed.stdout and all(path.exists() for path in replaced)
    assert manage("pruneimages", "--older-than-days", "0").returncode != 0
    pruned = manage("pruneimages")
    assert "Deleted 5 file(s) of unused images; kept 5." in pruned.stdout, pruned.stderr
    assert not any(path.exists() for path in replaced) and all(path.exists() for path in in_use | {stray})
    page = await (await client_for(None)).get(url("event_detail", "gala"))
    assert f"/media/images/{second.hash}-" in page.text
