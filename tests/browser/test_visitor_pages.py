"""Stored public pages in a real browser, with the page cache switched on as in production: a visitor gets
the event page compressed from memory, a student who registers sees their own page, the open pages' live
counters show the seat the student took (each in its page's language), and so does the visitor's next look."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from events.accounts import auth
from tests import factories, support
from tests.browser.test_staff_journey import log_in

pytestmark = pytest.mark.browser

PASSWORD = "Ptérodactyle-2030!"


@pytest.fixture(scope="module")
def server(_site_database, _compiled_messages, tmp_path_factory):
    """This module's server keeps public pages in memory (the other browser modules seed data behind the
    services' back, which a stored page would not hear of)."""
    with support.uvicorn_server(tmp_path_factory.mktemp("browser-server-cache"), env={
            "DATABASE_URL": _site_database, "PAGE_CACHE_SECONDS": "30", "PAGE_CACHE_GRACE_SECONDS": "0"}) as running:
        yield running


async def test_a_visitor_and_a_student_each_see_the_truth_of_a_stored_event_page(server, new_page):
    association_id = await factories.association(slug="bde", name="BDE Hyperion")
    await factories.event(association_id=association_id, slug="gala", title="Gala d'hiver", capacity=10)
    await factories.user(email="camille@etu.test", display_name="Camille Martin",
                              password_hash=await auth.password_hash(PASSWORD))

    visitor = await new_page(locale="en-US")
    for _look in range(2):  # the second look is answered from memory
        response = await visitor.goto("/events/gala/")
        assert response is not None and response.status == 200
    assert (await response.all_headers()).get("content-encoding") == "gzip"
    await expect(visitor.get_by_text("10 seats left")).to_be_visible()
    await expect(visitor.get_by_role("link", name="Log in to register")).to_be_visible()
    # A French visitor keeps the page open too (its own stored page, in French).
    french = await new_page(locale="fr-FR")
    for _look in range(2):
        await french.goto("/events/gala/")
    french_counter = french.locator("[data-live-seats]")
    await expect(french_counter).to_have_text("10 places restantes sur 10")

    student = await new_page(locale="en-US")
    await log_in(student, "camille@etu.test")
    await student.goto("/events/gala/")
    await expect(student.get_by_role("link", name="Log in to register")).to_have_count(0)
    await student.get_by_role("button", name="Register").click()
    await expect(student.get_by_role("region", name="Your registration")).to_contain_text("You are registered")
    await expect(student.get_by_text("9 seats left")).to_be_visible()
    # The open pages hear of the seat live, each in its own language (the stream's text, not the script's).
    await expect(visitor.locator("[data-live-seats]")).to_have_text("9 seats left of 10")
    await expect(french_counter).to_have_text("9 places restantes sur 10")

    await visitor.reload()
    await expect(visitor.get_by_text("9 seats left")).to_be_visible()
    await expect(visitor.get_by_text("Camille Martin")).to_have_count(0)
    await expect(visitor.get_by_role("link", name="Log in to register")).to_be_visible()
