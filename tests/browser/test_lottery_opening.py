"""A lottery opening in a real browser: before the opening the button counts down on the server's clock and
enables itself at the moment (no reload), the student's ask is an entry, and when the window closes the
site's drawer (in the server process) draws and the open page shows the result by itself."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import update

from events.accounts import auth
from events.models import Event, utcnow
from hyperion import db
from tests import factories, support
from tests.browser.test_staff_journey import log_in

pytestmark = pytest.mark.browser


COUNTDOWN = re.compile(r"^0:00:[0-5][0-9]$")  # hours:minutes:seconds, seconds left

PASSWORD = "Ptérodactyle-2030!"


@pytest.fixture(scope="module")
def server(_site_database, _compiled_messages, tmp_path_factory):
    """This module's server looks for due lotteries often (the production default is every 30 s at most)."""
    with support.uvicorn_server(tmp_path_factory.mktemp("browser-server-lottery"), env={
            "DATABASE_URL": _site_database, "LOTTERY_DRAWER_INTERVAL": "0.2"}) as running:
        yield running


async def test_the_button_opens_on_time_the_ask_is_an_entry_and_the_draw_shows_without_a_reload(server, new_page):
    association_id = await factories.association(slug="bde", name="BDE Hyperion")
    event_id = await factories.event(association_id=association_id, slug="ski", title="Week-end ski", capacity=1,
                                     registration_opens_at=utcnow() + timedelta(hours=2), lottery_minutes=10)
    await factories.user(email="camille@etu.test", display_name="Camille Martin",
                         password_hash=await auth.password_hash(PASSWORD))
    student = await new_page(locale="en-US")
    await log_in(student, "camille@etu.test")
    # Ten seconds from now: time enough for the page to load disabled, even on a loaded machine.
    # raw: the opening moved once the log-in is done, as time passing would (a staff edit would announce a change).
    async with db.write_session() as session, session.begin():
        await session.execute(update(Event).where(Event.id == event_id).values(
            registration_opens_at=utcnow() + timedelta(seconds=10)))
    await student.goto("/events/ski/")
    button = student.get_by_role("button", name="Enter the draw")
    await expect(button).to_be_disabled()
    await expect(student.locator("[data-countdown]")).to_have_text(COUNTDOWN)
    await expect(button).to_be_enabled(timeout=support.EVENT_WITHIN * 1000)
    await button.click()
    box = student.get_by_role("region", name="Your registration")
    await expect(box).to_contain_text("Your entry for the draw is recorded")
    await expect(student.get_by_role("button", name="Withdraw my entry")).to_be_visible()

    await factories.lottery_window_close(event_id)  # now: the server's drawer draws (one entry, one seat)
    await expect(box).to_contain_text("You are registered: your place is confirmed.",
                                      timeout=support.EVENT_WITHIN * 1000)
    await expect(student.locator("[data-live-seats]")).to_contain_text("Full (1 seat)")
