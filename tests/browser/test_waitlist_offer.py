"""A waitlist offer in a real browser: the first in line keeps the event's page open; when a confirmed
student leaves, that page shows the seat offered without a reload, and accepting it confirms the place."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from events.accounts import auth
from tests import factories, support
from tests.browser.test_staff_journey import PASSWORD, log_in

pytestmark = pytest.mark.browser


async def test_the_waiting_page_shows_the_offer_by_itself_and_accepting_confirms(server, new_page):
    association_id = await factories.association(slug="bde", name="BDE Hyperion")
    event_id = await factories.event(association_id=association_id, slug="gala-offre", title="Gala", capacity=1,
                                     offer_hours=24)
    password_hash = await auth.password_hash(PASSWORD)
    holder = await factories.user(email="holder@etu.test", display_name="Holder", password_hash=password_hash)
    waiting = await factories.user(email="waiting@etu.test", display_name="Waiting", password_hash=password_hash)
    await factories.registration(event_id=event_id, user_id=holder)
    await factories.registration(event_id=event_id, user_id=waiting)

    student = await new_page(locale="en-US")
    await log_in(student, "waiting@etu.test")
    await student.goto("/events/gala-offre/")
    box = student.get_by_role("region", name="Your registration")
    await expect(box).to_contain_text("You are on the waitlist, position 1.")
    await expect(student.locator("[data-live-seats]")).to_contain_text("Full")  # the live stream is open

    leaving = await new_page(locale="en-US")  # the seat holder leaves, through the site
    await log_in(leaving, "holder@etu.test")
    await leaving.goto("/events/gala-offre/")
    await leaving.get_by_role("button", name="Leave this event").click()
    await expect(leaving.get_by_role("region", name="Your registration")).to_contain_text("You left this event.")

    await expect(box).to_contain_text("A seat is offered to you: accept it before",
                                      timeout=support.EVENT_WITHIN * 1000)
    await student.get_by_role("button", name="Accept the seat").click()
    await expect(student.get_by_role("region", name="Your registration")).to_contain_text(
        "You are registered: your place is confirmed.")
    await expect(student.get_by_text("You accepted the seat: your place is confirmed.")).to_be_visible()
