"""An event's poster in a real browser (issue 20): a manager uploads a photo through the management page's
form, and the browser then loads it on the event page, at a desktop's width and a phone's (where it stays
within the screen), and as the thumbnail of the event's card on the home page (lazy: loaded once scrolled
to). A file that is no image gets the form's message with a 400, and changes nothing: not the event, not the
stored files, not the page."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image, ImageDraw, ImageFilter
from playwright.async_api import Locator, Page, expect
from sqlalchemy import select

from events.accounts import auth
from events.models import Event, Role
from hyperion import db
from tests import factories
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_staff_journey import PASSWORD, log_in

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONES = ({"width": 390, "height": 844}, {"width": 320, "height": 640})
TITLE = "Gala de printemps"
ALT = "Affiche du gala : une salle de bal illuminée, le 21 mars à 20 h"
NOT_AN_IMAGE = "This file is not an image: send a JPEG, PNG, WebP or GIF file."
# HYPERION_PHONE_SCREENSHOTS=1 (as for test_phone_layout.py): the event and home pages at each width, to look at.
SCREENSHOTS = ARTIFACTS / "posters" if os.environ.get("HYPERION_PHONE_SCREENSHOTS") else None


def photo(path: Path, width: int = 1240, height: int = 1754) -> Path:
    """A poster-shaped (A4, portrait) JPEG that looks like a photo: a sky's gradient, shapes, a little noise."""
    rng = random.Random(20)  # noqa: S311 - pixels, not secrets
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image = Image.merge("RGB", (image.getchannel(0).point(lambda v: 40 + v // 2),
                                image.getchannel(0).point(lambda v: 20 + v // 3),
                                image.getchannel(0).point(lambda v: 120 + v // 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(20, 160)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    image = image.filter(ImageFilter.GaussianBlur(3))
    image = Image.blend(image, Image.effect_noise((width, height), 40).convert("RGB"), 0.15)
    image.save(path, "JPEG", quality=88)
    return path


def stored_images() -> set[str]:
    """The image files the server's storage holds (it shares this session's MEDIA_ROOT, tests/settings.py)."""
    root = Path(settings.MEDIA_ROOT)
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


async def poster_columns(event_id: int) -> tuple[str | None, str]:
    async with db.read_session() as session:
        row = (await session.execute(select(Event.poster, Event.poster_alt).where(Event.id == event_id))).one()
    return row.poster, row.poster_alt


async def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        size = page.viewport_size or {"width": 0}
        await page.screenshot(path=SCREENSHOTS / f"{name}-{size['width']}.png", full_page=True)


def image_hash(url: str) -> str:
    """The stored image an address names, whichever of its widths (``/media/images/<hash>-<width>.webp``)."""
    found = re.search(r"/media/images/([0-9a-f]{20})-[0-9]+\.webp$", url)
    assert found, url
    return found.group(1)


async def loaded(image: Locator) -> dict:
    """Wait until the browser has the image (not merely its element), then what it shows and where."""
    await image.scroll_into_view_if_needed()  # a lazy image is fetched once near the screen
    await expect(image).to_have_js_property("complete", True)
    state = await image.evaluate("""(img) => {
        const box = img.getBoundingClientRect();
        return {naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, currentSrc: img.currentSrc,
                left: box.left, right: box.right, width: box.width, height: box.height,
                pageWidth: document.documentElement.scrollWidth, viewport: window.innerWidth};
    }""")
    assert state["naturalWidth"] > 0 and state["naturalHeight"] > 0, state  # complete, and not broken
    image_hash(state["currentSrc"])  # one of the image's widths, answered by the site
    return state


async def test_a_manager_uploads_a_poster_that_the_event_page_and_the_home_page_show(server, new_page, tmp_path):
    password_hash = await auth.password_hash(PASSWORD)
    bde = await factories.association(slug="bde", name="BDE Hyperion")
    other = await factories.association(slug="theatre", name="Club Théâtre")
    manager = await factories.user(email="manager@etu.test", display_name="Maud Manager", password_hash=password_hash)
    await factories.member(association_id=bde, user_id=manager, role=Role.MANAGER)
    event_id = await factories.event(association_id=bde, slug="gala", title=TITLE, location="Le Foyer",
                                     description="Tenue de soirée conseillée. Vestiaire à l'entrée. " * 4)
    await factories.event(association_id=other, slug="impro", title="Match d'impro")  # no poster, no logo

    # The manager: the event's management page → Poster → a photo and its text alternative → saved.
    page = await new_page(locale="en-US", viewport=DESKTOP)
    await log_in(page, "manager@etu.test")
    await page.goto(f"/manage/events/{event_id}/")
    await page.get_by_role("link", name="Poster", exact=True).click()
    await expect(page).to_have_url(f"/manage/events/{event_id}/poster/")
    await expect(page.get_by_role("heading", name=f"Poster of “{TITLE}”", level=1)).to_be_visible()
    await expect(page.get_by_text("This event has no poster yet")).to_be_visible()
    await expect(page.get_by_label("Remove the image")).to_have_count(0)
    await page.get_by_label("Image", exact=True).set_input_files(photo(tmp_path / "affiche.jpg"))
    await page.get_by_label("Text alternative").fill(ALT)
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Poster saved.")
    await expect(page).to_have_url(f"/manage/events/{event_id}/")
    poster_key, poster_alt = await poster_columns(event_id)
    assert poster_key is not None and poster_alt == ALT

    # The event page, on a desktop: the poster beside the facts, loaded, with its text alternative.
    visitor = await new_page(locale="en-US", viewport=DESKTOP)
    await visitor.goto("/events/gala/")
    poster = visitor.locator("figure.poster-figure img.poster")
    await expect(poster).to_have_attribute("alt", ALT)
    await expect(poster).to_have_attribute("fetchpriority", "high")
    await expect(visitor.get_by_role("img", name=ALT)).to_be_visible()
    desktop = await loaded(poster)
    assert image_hash(desktop["currentSrc"]) == poster_key.split("-")[0], (desktop, poster_key)
    await screenshot(visitor, "event")
    # Beside the facts, it stays within the article (the footer starts below it), and the registration box and
    # the description narrow beside it rather than running under it.
    layout = await visitor.evaluate("""() => {
        const box = (selector) => document.querySelector(selector).getBoundingClientRect().toJSON();
        return {poster: box('img.poster'), footer: box('.site-footer'), boxes: [box('.my-state'), box('.description')]};
    }""")
    poster_box = layout["poster"]
    assert layout["footer"]["top"] >= poster_box["bottom"], layout
    for beside in layout["boxes"]:
        assert beside["top"] >= poster_box["bottom"] or beside["right"] <= poster_box["left"], layout
    assert desktop["right"] <= DESKTOP["width"] and desktop["width"] <= 20 * 16 + 1, desktop  # the 20rem column

    # On phones: the same poster, within the screen, and the page does not scroll sideways.
    for phone in PHONES:
        await visitor.set_viewport_size(phone)
        await visitor.reload()
        state = await loaded(poster)
        assert state["left"] >= 0 and state["right"] <= phone["width"], (phone, state)
        assert state["width"] <= phone["width"] and state["height"] <= phone["height"], (phone, state)
        assert state["pageWidth"] <= phone["width"], (phone, state)
        if phone == PHONES[0]:  # the poster takes part of the first screen, not all of it: register is still on it
            register = await visitor.get_by_role("link", name="Log in to register").bounding_box()
            assert register is not None and register["y"] + register["height"] <= phone["height"], (phone, register)
        await screenshot(visitor, "event")
    await expect(visitor.get_by_role("img", name=ALT)).to_be_visible()

    # The home page: the event's card shows the poster's thumbnail; the other event's card its initial.
    for viewport in (DESKTOP, *PHONES):
        await visitor.set_viewport_size(viewport)
        await visitor.goto("/")
        card = visitor.locator("li.event-card").filter(has=visitor.get_by_role("link", name=TITLE))
        thumb = card.locator("img.thumb")
        await expect(thumb).to_have_attribute("loading", "lazy")
        state = await loaded(thumb)
        card_box = await card.bounding_box()
        assert card_box is not None
        assert card_box["x"] - 0.5 <= state["left"] and state["right"] <= card_box["x"] + card_box["width"] + 0.5, (
            viewport, state, card_box)
        assert 40 <= state["width"] <= 72 and abs(state["width"] - state["height"]) < 1, (viewport, state)  # a square
        assert state["pageWidth"] <= viewport["width"], (viewport, state)
        title_box = await card.get_by_role("link", name=TITLE).bounding_box()
        assert title_box is not None and title_box["x"] >= state["right"], (viewport, title_box, state)  # beside it
        other_card = visitor.locator("li.event-card").filter(has=visitor.get_by_role("link", name="Match d'impro"))
        await expect(other_card.locator(".thumb.thumb-empty")).to_have_text("C")
        await expect(other_card.locator("img")).to_have_count(0)
        await screenshot(visitor, "home")

    # A file that is no image, whatever its name says: the form's message, a 400, and nothing changes (on a
    # phone, where the form shows the current poster within the screen).
    await page.set_viewport_size(PHONES[0])
    before = stored_images()
    svg = tmp_path / "affiche.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="800" height="1200">'
                   '<script>alert(document.cookie)</script><rect width="800" height="1200" fill="red"/></svg>')
    text = tmp_path / "affiche.jpg.txt"
    text.write_text("Ceci n'est pas une affiche.\n" * 50)
    lying = tmp_path / "photo.jpg"
    lying.write_bytes(text.read_bytes())
    for upload in (svg, text, lying):
        await page.goto(f"/manage/events/{event_id}/poster/")
        await expect(page.get_by_text(f"Now: {ALT}")).to_be_visible()  # the current poster, shown
        preview = await loaded(page.locator("figure.image-current img"))
        assert preview["right"] <= PHONES[0]["width"] and preview["pageWidth"] <= PHONES[0]["width"], preview
        await expect(page.get_by_label("Text alternative")).to_have_value(ALT)
        await page.get_by_label("Image", exact=True).set_input_files(upload)
        async with page.expect_response(lambda response: response.request.method == "POST") as answered:
            await page.get_by_role("button", name="Save").click()
        assert (await answered.value).status == 400, upload.name
        await expect(page).to_have_url(f"/manage/events/{event_id}/poster/")
        error = page.locator(".field.has-error ul.errorlist")
        await expect(error).to_have_text(NOT_AN_IMAGE)
        await expect(page.get_by_label("Image", exact=True)).to_have_attribute("aria-invalid", "true")
        await expect(page.get_by_role("status")).to_have_count(0)  # no "Poster saved."
        assert await poster_columns(event_id) == (poster_key, ALT), upload.name
        assert stored_images() == before, upload.name
    await screenshot(page, "refused")
    await visitor.set_viewport_size(DESKTOP)
    await visitor.goto("/events/gala/")
    assert image_hash((await loaded(poster))["currentSrc"]) == image_hash(desktop["currentSrc"])
