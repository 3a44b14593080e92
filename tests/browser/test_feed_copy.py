"""The personal feed in a real browser: made from the account page, offered as a webcal:// link, and copied
to the clipboard by its button."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from events.accounts import auth
from tests import factories
from tests.browser.test_staff_journey import PASSWORD, log_in

pytestmark = pytest.mark.browser


async def test_the_feed_address_is_copied_by_its_button(server, new_page):
    await factories.user(email="camille@etu.test", display_name="Camille Martin",
                         password_hash=await auth.password_hash(PASSWORD))
    page = await new_page(locale="en-US", permissions=["clipboard-read", "clipboard-write"])
    await log_in(page, "camille@etu.test")
    await page.goto("/account/")
    await page.get_by_role("button", name="Create my feed address").click()
    address = await page.get_by_label("Your personal feed address").input_value()
    assert address.startswith("http") and "/feeds/me/" in address
    webcal = await page.get_by_role("link", name="Subscribe in my calendar app").get_attribute("href")
    assert webcal == "webcal://" + address.split("://", 1)[1]
    await page.get_by_role("button", name="Copy", exact=True).click()
    await expect(page.get_by_text("Copied", exact=True)).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == address
