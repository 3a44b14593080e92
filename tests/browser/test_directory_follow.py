"""The associations' directory and following, in a real browser (issue 20): on a phone and on a desktop, a
student finds every association with its logo (loaded by the browser) or its initial, and its next event, follows
one from the directory, sees it followed there and on the association's page, and stops from that page."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image
from playwright.async_api import expect
from sqlalchemy import select

from events.accounts import auth
from events.models import Follow, utcnow
from events.staff import images as staff_images
from hyperion import db, images
from tests import factories
from tests.browser.test_posters import PHONES, loaded
from tests.browser.test_staff_journey import PASSWORD, log_in

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}


async def _logo(association_id: int, alt: str) -> None:
    """A logo set as its manager's form would (hyperion.images.accept, then the service)."""
    buffer = io.BytesIO()
    Image.new("RGBA", (320, 320), (20, 120, 200, 255)).save(buffer, "PNG")
    image = await images.accept(buffer.getvalue())
    async with db.write_session() as session:
        await staff_images.association_logo_set(session, actor=factories.SET_UP, association_id=association_id,
                                                choice=staff_images.ImageChoice(alt=alt, image=image))


async def _follows(user_id: int) -> set[int]:
    async with db.read_session() as session:
        return set((await session.execute(select(Follow.association_id).where(Follow.user_id == user_id))).scalars())


@pytest.mark.parametrize("viewport", [DESKTOP, PHONES[0]], ids=["desktop", "phone"])
async def test_a_student_finds_an_association_in_the_directory_and_follows_it(server, new_page, viewport):
    bde = await factories.association(slug="bde", name="BDE Hyperion")
    await factories.association(slug="theatre", name="Club Théâtre")
    await _logo(bde, "Le hibou bleu du BDE")
    await factories.event(association_id=bde, slug="gala", title="Gala de printemps",
                          starts_at=utcnow() + timedelta(days=5))
    student = await factories.user(email="lea@etu.test", display_name="Léa",
                                   password_hash=await auth.password_hash(PASSWORD))

    page = await new_page(locale="en-US", viewport=DESKTOP)
    await log_in(page, "lea@etu.test")  # the header's links are behind the Menu button on a phone
    await page.set_viewport_size(viewport)
    await page.goto("/associations/")
    bde_card = page.locator("ul.directory > li").filter(has=page.get_by_role("link", name="BDE Hyperion"))
    logo = bde_card.locator("img.logo")
    await expect(logo).to_have_attribute("alt", "")  # the heading beside it names the association
    state = await loaded(logo)
    assert state["right"] <= viewport["width"] and state["pageWidth"] <= viewport["width"], state
    await expect(bde_card.get_by_role("link", name="Gala de printemps")).to_be_visible()
    theatre_card = page.locator("ul.directory > li").filter(has=page.get_by_role("link", name="Club Théâtre"))
    await expect(theatre_card.locator(".logo-empty")).to_have_text("C")  # no logo: its initial
    await expect(theatre_card.get_by_text("No upcoming event for now.")).to_be_visible()

    # Follow from the directory: the button says so at once, on this page and on the association's.
    await bde_card.get_by_role("button", name="Follow").click()
    await expect(bde_card.get_by_role("button", name="Following ✓ (stop)")).to_have_attribute("aria-pressed", "true")
    assert await _follows(student) == {bde}
    await bde_card.get_by_role("link", name="BDE Hyperion").click()
    await expect(page.get_by_role("heading", name="BDE Hyperion", level=1, exact=True)).to_be_visible()
    await loaded(page.get_by_role("img", name="Le hibou bleu du BDE"))
    await page.get_by_role("button", name="Following ✓ (stop)").click()
    await expect(page.get_by_role("button", name="Follow", exact=True)).to_have_attribute("aria-pressed", "false")
    assert await _follows(student) == set()
