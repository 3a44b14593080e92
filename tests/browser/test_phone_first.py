"""Phone first, in a real browser at 390×844 (a common phone) with JavaScript off: the header is one line with a
Menu button that opens the links, the filters fold behind one button that counts the active ones, the first
event card is on the first screen, and what a thumb taps is at least 44 px high."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests import factories

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
TAP = 44  # px: the smallest tap target (WCAG 2.5.5, Apple's and Google's guidelines)

# The tap targets of the header and of the filters, once shown (a checkbox's target is its label).
_TARGETS = """(root) => [...root.querySelectorAll(
    'a, button, summary, select, input:not([type=checkbox]):not([type=hidden]), label.nav-toggle-button,'
    + ' .field-check label')]
  .filter(element => element.offsetParent !== null && !element.closest('p, li.event-card'))
  .map(element => ({what: element.outerHTML.slice(0, 80), height: element.getBoundingClientRect().height}))"""


async def _site() -> None:
    club = await factories.association(slug="club", name="Club Théâtre")
    for number in range(3):
        await factories.event(association_id=club, slug=f"soiree-{number}", title=f"Soirée {number}",
                              category="party")


async def test_the_first_screen_of_a_phone_shows_the_header_the_search_and_the_first_event(server, new_page):
    await _site()
    page = await new_page(locale="en-US", viewport=PHONE, java_script_enabled=False)
    await page.goto("/")
    header = await page.locator(".site-header").bounding_box()
    assert header is not None and header["height"] <= 64, header  # one line: brand and Menu
    first_card = await page.locator("li.event-card").first.bounding_box()
    assert first_card is not None and first_card["y"] + 40 < PHONE["height"], first_card  # seen without scrolling
    # The links are behind the Menu button, which works without JavaScript.
    calendar = page.get_by_role("link", name="Calendar", exact=True)
    await expect(calendar).to_be_hidden()
    await page.get_by_text("Menu", exact=True).click()
    await expect(calendar).to_be_visible()
    small = [target for target in await page.locator(".site-header").evaluate(_TARGETS) if target["height"] < TAP]
    assert not small, small
    await calendar.click()
    await expect(page).to_have_url("/calendar/")


async def test_the_filters_fold_behind_one_button_that_counts_the_active_ones(server, new_page):
    await _site()
    page = await new_page(locale="en-US", viewport=PHONE, java_script_enabled=False)
    await page.goto("/")
    category = page.get_by_label("Category")
    await expect(category).to_be_hidden()
    summary = page.locator(".filters-more > summary")
    assert (await summary.inner_text()).strip() == "Filters"
    await summary.click()
    await expect(category).to_be_visible()
    small = [target for target in await page.locator("form.filters").evaluate(_TARGETS) if target["height"] < TAP]
    assert not small, small
    await category.select_option(label="Party")
    await page.get_by_label("Seats left only").check()
    await page.get_by_role("button", name="Apply the filters").click()
    await expect(page).to_have_url("/?q=&association=&category=party&date_from=&date_to=&has_seats=on")
    assert " ".join((await summary.inner_text()).split()) == "Filters 2"
    await expect(page.get_by_role("link", name="Clear filters")).to_be_visible()


async def test_on_a_wide_screen_the_links_are_in_the_header_without_a_menu_button(server, new_page):
    await _site()
    page = await new_page(locale="en-US")  # 1280×900
    await page.goto("/")
    await expect(page.get_by_role("link", name="Calendar", exact=True)).to_be_visible()
    await expect(page.get_by_text("Menu", exact=True)).to_be_hidden()
