"""An event's way to publication in a real browser: an editor writes it and submits it, a staff member
approves it from the queue, and a visitor finds it on the home page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from events.accounts import auth
from events.models import Role
from tests import factories

pytestmark = pytest.mark.browser

PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "Ptérodactyle-2030!"
TITLE = "Nuit du jeu de société"


async def log_in(page: Page, email: str) -> None:
    await page.goto("/account/login/")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("navigation", name="Main").get_by_role("button", name="Log out")).to_be_visible()


async def test_editor_writes_an_event_staff_approves_it_and_visitors_see_it(server, new_page):
    bde = await factories.association(slug="bde", name="BDE Hyperion")
    password_hash = await auth.password_hash(PASSWORD)
    editor_id = await factories.user(email="editor@etu.test", display_name="Eddy Editor",
                                          password_hash=password_hash)
    await factories.user(email="staff@etu.test", display_name="Sam Staff", is_staff=True,
                              password_hash=password_hash)
    await factories.member(association_id=bde, user_id=editor_id, role=Role.EDITOR)
    starts = (datetime.now(PARIS) + timedelta(days=9)).replace(hour=19, minute=0, second=0, microsecond=0)

    # The editor: Manage → New event, fill in, save, submit.
    editor = await new_page(locale="en-US")
    await log_in(editor, "editor@etu.test")
    await editor.get_by_role("navigation", name="Main").get_by_role("link", name="Manage").click()
    await expect(editor.get_by_role("heading", name="Management", level=1)).to_be_visible()
    await editor.get_by_role("navigation", name="Management").get_by_role("link", name="New event").click()
    await expect(editor.get_by_role("heading", name="New event", level=1)).to_be_visible()
    await editor.get_by_label("Title").fill(TITLE)
    await editor.get_by_label("Association", exact=True).select_option(label="BDE Hyperion")
    await editor.get_by_label("Category").select_option(label="Games")
    await editor.get_by_label("Place").fill("Le Foyer")
    await editor.get_by_label("Starts", exact=True).fill(f"{starts:%Y-%m-%dT%H:%M}")
    await editor.get_by_label("Ends", exact=True).fill(f"{starts + timedelta(hours=4):%Y-%m-%dT%H:%M}")
    await editor.get_by_label("Seats", exact=True).fill("40")
    await editor.get_by_label("Description").fill("Apportez vos jeux préférés.")
    await editor.get_by_role("button", name="Save").click()
    await expect(editor.get_by_role("status")).to_contain_text("Draft created.")
    await expect(editor.get_by_role("heading", name=TITLE, level=1)).to_be_visible()
    await expect(editor.get_by_text("Draft", exact=True)).to_be_visible()
    await expect(editor.get_by_text("Le Foyer", exact=True)).to_be_visible()
    await editor.get_by_role("button", name="Submit for approval").click()
    await expect(editor.get_by_role("status")).to_contain_text("Submitted for approval")
    await expect(editor.get_by_text("Submitted", exact=True)).to_be_visible()
    await expect(editor.get_by_role("button", name="Submit for approval")).to_have_count(0)
    await expect(editor.get_by_role("button", name="Approve")).to_have_count(0)

    # The staff member: the navigation counts the event in the queue; approve it from there.
    staff = await new_page(locale="en-US")
    await log_in(staff, "staff@etu.test")
    manage = staff.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Manage"))
    await expect(manage.locator(".badge")).to_have_text("1")
    await manage.click()
    await staff.get_by_role("navigation", name="Management").get_by_role(
        "link", name=re.compile(r"^Approval queue")).click()
    await expect(staff.get_by_role("heading", name="Approval queue", level=1)).to_be_visible()
    card = staff.get_by_role("listitem").filter(has=staff.get_by_role("heading", name=TITLE))
    await expect(card).to_contain_text("BDE Hyperion")
    await card.get_by_role("button", name="Approve").click()
    await expect(staff.get_by_role("status")).to_contain_text("Approved: the event is published.")
    await expect(staff.get_by_text("Nothing waits for approval.")).to_be_visible()
    await expect(manage.locator(".badge")).to_have_count(0)

    # A visitor finds it on the home page and opens it.
    visitor = await new_page(locale="en-US")
    await visitor.goto("/")
    await expect(visitor.get_by_role("link", name=TITLE)).to_be_visible()
    await visitor.get_by_role("link", name=TITLE).click()
    await expect(visitor.get_by_role("heading", name=TITLE, level=1)).to_be_visible()
    await expect(visitor.get_by_text("Le Foyer", exact=True)).to_be_visible()
    await expect(visitor.get_by_text("40 seats left")).to_be_visible()
