"""Posters and logos: an upload is checked and re-encoded so that only pixels are kept, hostile files get the
form's message (never a 500) with the database and the image folder unchanged, the pages show the images in
a few widths, and the images are answered like static files (immutable, ETag, no query, no thread)."""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import zlib
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.core.files.storage import storages
from PIL import Image
from sqlalchemy import select

from events.models import Association, EventStatus
from hyperion.app import HyperionApp
from hyperion.images import ImageRef
from tests import factories, support
from tests.staff.pages import after_redirect, audit_all, client_for, event_row, team, url

GPS_TAG = 0x8825  # EXIF's GPSInfo


def photo(width: int = 1600, height: int = 1200, *, fmt: str = "JPEG", gps: bool = False, mode: str = "RGB") -> bytes:
    """A photo as a phone would send it: stripes of colour, and (``gps``) where it was taken in its EXIF."""
    image = Image.new(mode, (width, height), (30, 90, 160) if mode == "RGB" else (30, 90, 160, 128))
    for x in range(0, width, 40):
        image.paste((220, 180, 40) if mode == "RGB" else (220, 180, 40, 255), (x, 0, x + 20, height))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if gps:
        exif[0x010F] = "PhoneMaker"  # Make
        exif.get_ifd(GPS_TAG).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 7.0)})
    image.save(buffer, fmt, **({"exif": exif} if gps else {}))
    return buffer.getvalue()


def huge_png(width: int = 10_000, height: int = 5_000) -> bytes:
    """A 50-megapixel PNG of one colour, written by hand: 50 MB of zeros compress to about 50 kB, and Pillow
    would need 150 MB to decode it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = zlib.compress(b"".join(b"\0" + bytes(width * 3) for _ in range(height)), 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def noise_png(side: int = 200) -> bytes:
    """A PNG that does not compress: about 120 kB of random pixels."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def upload(name: str, data: bytes, content_type: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.is_dir() else []


@pytest.fixture(autouse=True)
def _empty_image_folder():
    for path in stored_files():
        path.unlink()


async def test_a_managers_photo_becomes_a_poster_with_only_its_pixels_in_a_few_widths(session):
    people = await team()
    gala = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    manager = await client_for(people.manager)
    form = (await manager.get(url("staff_event_poster", gala))).text
    assert 'enctype="multipart/form-data"' in form and 'accept="image/jpeg,image/png,image/webp,image/gif"' in form
    sent = await manager.post(url("staff_event_poster", gala), {
        "image": upload("IMG_2041.jpg", photo(gps=True), "image/jpeg"), "alt": "The hall, lit in gold"})
    assert "Poster saved." in await after_redirect(manager, sent)
    row = await event_row(session, gala)
    poster = ImageRef.parse(row.poster)
    assert poster is not None and (poster.width, poster.height) == (1280, 960) and row.poster_alt == \
        "The hall, lit in gold"
    names = {path.name for path in stored_files()}
    assert names == {f"{poster.hash}-{width}.webp" for width in (160, 320, 640, 1280)} | {f"{poster.hash}-share.jpg"}
    for path in stored_files():  # nothing but pixels: no EXIF (no position, no camera), no ICC profile
        with Image.open(path) as kept:
            assert not kept.getexif() and "exif" not in kept.info and "icc_profile" not in kept.info
            assert kept.format in ("WEBP", "JPEG")
    assert [entry.action for entry in await audit_all(session, "event.poster_changed")] == ["event.poster_changed"]

    # The event page shows it large, first; the lists small, lazily.
    page = await (await client_for(people.student)).get(url("event_detail", "gala"))
    image = re.search(r'<img class="poster"[^>]*>', page.text).group(0)
    assert 'alt="The hall, lit in gold"' in image and 'fetchpriority="high"' in image and "srcset=" in image
    assert f"/media/images/{poster.hash}-1280.webp 1280w" in image and 'width="640" height="480"' in image
    shared = (await (await client_for(None)).get(url("event_detail", "gala"))).text  # what a chat app fetches
    assert f'<meta property="og:image" content="{settings.SITE_URL}/media/images/{poster.hash}-share.jpg">' in shared
    assert '<meta name="twitter:card" content="summary_large_image">' in shared
    assert f'"image": ["{settings.SITE_URL}/media/images/{poster.hash}-share.jpg"]' in shared  # schema.org Event
    home = (await (await client_for(None)).get("/")).text
    assert re.search(rf'<img class="thumb" src="/media/images/{poster.hash}-160.webp"[^>]*loading="lazy"', home)

    # The text alternative alone can change, then the poster goes, and its files stay (addresses may be cached).
    await manager.post(url("staff_event_poster", gala), {"alt": "The hall"})
    assert (await event_row(session, gala)).poster_alt == "The hall"
    await manager.post(url("staff_event_poster", gala), {"remove": "on", "alt": ""})
    assert (await event_row(session, gala)).poster is None
    assert '<img class="poster"' not in (await (await client_for(None)).get(url("event_detail", "gala"))).text


HOSTILE = {
    "an SVG with a script": ("poster.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
                             b'</svg>', "image/svg+xml", "This file is not an image"),
    "a 50-megapixel PNG": ("big.png", huge_png(), "image/png", "too many pixels: 40 megapixels at most"),
    "a file that is not an image": ("notes.jpg", b"just some text, named like a photo\n" * 40, "image/jpeg",
                                    "This file is not an image"),
    "a truncated JPEG": ("cut.jpg", photo()[:6000], "image/jpeg", "damaged or incomplete"),
    "an icon too small": ("dot.png", photo(20, 20, fmt="PNG"), "image/png", "too small"),
    "a sliver": ("line.png", photo(64, 4000, fmt="PNG"), "image/png", "too long and thin: one side may be at most 5"),
    "an empty file": ("empty.jpg", b"", "image/jpeg", "The submitted file is empty"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_a_hostile_upload_gets_the_forms_message_and_changes_nothing(session, case):
    name, data, content_type, message = HOSTILE[case]
    people = await team()
    gala = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    before = await event_row(session, gala)
    response = await (await client_for(people.manager)).post(url("staff_event_poster", gala), {
        "image": upload(name, data, content_type), "alt": "A poster"})
    assert response.status_code == 400 and message in response.text
    assert await event_row(session, gala) == before and stored_files() == []
    assert await audit_all(session, "event.poster_changed") == []


async def test_an_image_over_the_size_limit_and_one_without_alt_are_refused(session, settings):
    settings.IMAGE_MAX_BYTES = 20_000
    people = await team()
    gala = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    manager = await client_for(people.manager)
    too_big = await manager.post(url("staff_event_poster", gala), {
        "image": upload("noise.png", noise_png(), "image/png"), "alt": "A poster"})
    assert too_big.status_code == 400 and "too large: 0.02 MB at most" in too_big.text
    manager.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"  # checked in the image thread, said in her language
    in_french = await manager.post(url("staff_event_poster", gala), {
        "image": upload("noise.png", noise_png(), "image/png"), "alt": "Une affiche"})
    assert "trop lourde : 0,02 Mo au plus" in in_french.text.replace("&#x27;", "'")
    manager.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    no_alt = await manager.post(url("staff_event_poster", gala), {
        "image": upload("p.jpg", photo(200, 200), "image/jpeg"), "alt": "  "})
    assert no_alt.status_code == 400 and "it is required with an image" in no_alt.text
    hidden = await manager.post(url("staff_event_poster", gala), {
        "image": upload("p.jpg", photo(200, 200), "image/jpeg"), "alt": "BDE \u202effats"})
    assert hidden.status_code == 400
    assert (await event_row(session, gala)).poster is None and stored_files() == []


async def test_only_who_may_edit_the_event_uploads_and_the_refused_upload_is_never_decoded(session):
    people = await team()
    published = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    draft = await factories.event(association_id=people.bde, slug="draft", title="Draft", status=EventStatus.DRAFT)
    theirs = await factories.event(association_id=people.bds, slug="match", title="Match")
    sent = {"image": upload("p.jpg", photo(300, 300), "image/jpeg"), "alt": "A poster"}
    editor = await client_for(people.editor)
    assert (await editor.post(url("staff_event_poster", published), dict(sent))).status_code == 403  # managers'
    assert (await editor.post(url("staff_event_poster", theirs), dict(sent))).status_code == 404
    assert (await (await client_for(people.student)).post(url("staff_event_poster", published),
                                                           dict(sent))).status_code == 403
    assert stored_files() == []
    sent["image"].seek(0)
    assert (await editor.post(url("staff_event_poster", draft), dict(sent))).status_code == 302  # a draft: theirs
    assert (await event_row(session, draft)).poster is not None


async def test_an_associations_logo_shows_in_the_directory_and_stands_in_for_a_missing_poster(session):
    people = await team()
    await factories.event(association_id=people.bde, slug="gala", title="Gala")
    manager = await client_for(people.manager)
    sent = await manager.post(url("staff_association_logo", people.bde), {
        "image": upload("logo.png", photo(400, 400, fmt="PNG", mode="RGBA"), "image/png"), "alt": "BDE's owl"})
    assert sent.status_code == 302
    logo = ImageRef.parse((await session.execute(select(Association.logo).where(
        Association.id == people.bde))).scalar_one())
    assert logo is not None
    with Image.open(Path(settings.MEDIA_ROOT) / f"images/{logo.hash}-share.jpg") as share:
        assert share.mode == "RGB"  # transparency laid on white for share previews
    visitor = client_for(None)
    directory = (await (await visitor).get("/associations/")).text
    assert f"/media/images/{logo.hash}-" in directory
    association_page = (await (await client_for(None)).get("/associations/bde/")).text
    assert re.search(rf'<img class="logo logo-title" src="/media/images/{logo.hash}-[^>]*alt="BDE&#39;s owl"',
                     association_page)
    home = (await (await client_for(None)).get("/")).text
    assert f'src="/media/images/{logo.hash}-160.webp"' in home  # the poster's stand-in
    event_page = (await (await client_for(None)).get(url("event_detail", "gala"))).text
    assert re.search(rf'<img class="logo logo-inline" src="/media/images/{logo.hash}-160.webp"[^>]*alt=""', event_page)
    assert '<img class="poster"' not in event_page
    assert (await (await client_for(people.editor)).get(url("staff_association_logo", people.bde))).status_code \
        in (403, 404)
    # Without either: a tile with the association's initial, no image request.
    bds_event = await factories.event(association_id=people.bds, slug="match", title="Match")
    assert bds_event and '<span class="thumb thumb-empty" aria-hidden="true">B</span>' in \
        (await (await client_for(None)).get("/")).text


async def test_images_are_answered_like_static_files_without_a_query_or_a_thread(session):
    people = await team()
    gala = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    await (await client_for(people.manager)).post(url("staff_event_poster", gala), {
        "image": upload("p.jpg", photo(), "image/jpeg"), "alt": "A poster"})
    poster = ImageRef.parse((await event_row(session, gala)).poster)
    app = HyperionApp()
    threads = threading.active_count()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        with support.engine_events("before_cursor_execute") as statements:
            image = await client.get(f"/media/images/{poster.hash}-640.webp")
            again = await client.get(f"/media/images/{poster.hash}-640.webp",
                                     headers={"If-None-Match": image.headers["ETag"]})
            share = await client.get(f"/media/images/{poster.hash}-share.jpg")
            missing = [await client.get(path) for path in (
                f"/media/images/{poster.hash}-641.webp", "/media/images/../../hyperion.sqlite3",
                "/media/%2e%2e/settings.py", f"/media/images/{poster.hash.upper()}-640.webp")]
            posted = await client.post(f"/media/images/{poster.hash}-640.webp")
    assert statements == [] and threading.active_count() == threads
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/webp"
    assert image.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert image.headers["X-Content-Type-Options"] == "nosniff" and image.content[:4] == b"RIFF"
    with Image.open(io.BytesIO(image.content)) as served:
        assert served.size == (640, poster.height_at(640))
    assert again.status_code == 304 and again.content == b""
    assert share.status_code == 200 and share.headers["Content-Type"] == "image/jpeg"
    assert [response.status_code for response in missing] == [404] * 4 and posted.status_code == 405


async def test_another_storage_by_setting_keeps_and_addresses_the_images(session, settings):
    """An S3-compatible bucket is configured the same way (README): here Django's in-memory storage stands in
    for it, at its own address, and the site's own image handler is off."""
    settings.STORAGES = {**settings.STORAGES, "images": {
        "BACKEND": "django.core.files.storage.InMemoryStorage",
        "OPTIONS": {"base_url": "https://cdn.example.org/hyperion/"}}}
    people = await team()
    gala = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    response = await (await client_for(people.manager)).post(url("staff_event_poster", gala), {
        "image": upload("p.jpg", photo(), "image/jpeg"), "alt": "A poster"})
    assert response.status_code == 302 and stored_files() == []
    poster = ImageRef.parse((await event_row(session, gala)).poster)
    assert storages["images"].exists(f"images/{poster.hash}-640.webp")
    page = (await (await client_for(None)).get(url("event_detail", "gala"))).text
    assert f"https://cdn.example.org/hyperion/images/{poster.hash}-640.webp 640w" in page
    assert HyperionApp().media is None


async def test_the_same_image_twice_shares_its_files_and_a_refused_write_leaves_them_for_pruneimages(session,
                                                                                                 monkeypatch):
    people = await team()
    gala = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    rando = await factories.event(association_id=people.bde, slug="rando", title="Rando")
    manager = await client_for(people.manager)
    same = photo(gps=True)
    for event_id in (gala, rando):  # the same photo on two events: the same files, written again, no error
        response = await manager.post(url("staff_event_poster", event_id), {
            "image": upload("p.jpg", same, "image/jpeg"), "alt": "A poster"})
        assert response.status_code == 302
    first, second = (await event_row(session, gala)).poster, (await event_row(session, rando)).poster
    assert first == second and len(stored_files()) == 5
    from events.staff import images as staff_images

    async def deleted_meanwhile(session, **_arguments):
        raise staff_images.EventNotFound

    monkeypatch.setattr(staff_images, "event_poster_set", deleted_meanwhile)
    refused = await manager.post(url("staff_event_poster", gala), {
        "image": upload("p.jpg", photo(900, 900), "image/jpeg"), "alt": "Another poster"})
    assert refused.status_code == 404 and (await event_row(session, gala)).poster == first
    # Its files stay (another upload of that image could be using them): pruneimages takes what nothing uses.
    assert len(stored_files()) == 10
