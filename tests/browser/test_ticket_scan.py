"""Tickets at the door, in a real browser: two door staff scan the same ticket at the same moment and exactly
one lets the student in ("checked in"), the other reads when ("already checked in at …"); the camera button
reads a QR code through the browser's BarcodeDetector and sends it by itself."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from events.accounts import auth
from events.models import Role
from events.rules import tickets
from tests import factories
from tests.browser.test_staff_journey import PASSWORD, log_in

pytestmark = pytest.mark.browser

CHECKED_IN = r"Alice Martin is checked in \(\d\d:\d\d\)\."
ALREADY = r"Alice Martin was already checked in at \d\d:\d\d\."


async def door_and_ticket(slug: str, students: int = 1):
    association_id = await factories.association(slug=f"bde-{slug}", name="BDE Hyperion")
    event_id = await factories.event(association_id=association_id, slug=slug, title="Gala", capacity=10)
    password_hash = await auth.password_hash(PASSWORD)
    doors = []
    for index in range(2):
        door = await factories.user(email=f"door{index}-{slug}@etu.test", display_name=f"Door {index}",
                                    password_hash=password_hash)
        await factories.member(association_id=association_id, user_id=door, role=Role.EDITOR)
        doors.append(f"door{index}-{slug}@etu.test")
    alice = await factories.user(email=f"alice-{slug}@etu.test", display_name="Alice Martin")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    return event_id, doors, tickets.ticket_code(event_id=event_id, registration_id=registration)


async def test_two_door_staff_scanning_one_ticket_at_once_let_one_person_in(server, new_page):
    event_id, doors, code = await door_and_ticket("gala-porte")
    pages = []
    for email in doors:
        page = await new_page(locale="en-US")
        await log_in(page, email)
        await page.goto(f"/manage/events/{event_id}/checkin/")
        await page.get_by_label("Ticket code").fill(code)
        pages.append(page)
    await asyncio.gather(*(page.get_by_role("button", name="Check in", exact=True).click() for page in pages))
    messages = []
    for page in pages:
        status = page.get_by_role("status").filter(has_text="Alice Martin")
        await expect(status).to_be_visible()
        messages.append(await status.inner_text())
    import re

    assert sorted(bool(re.search(CHECKED_IN, text)) for text in messages) == [False, True], messages
    assert sorted(bool(re.search(ALREADY, text)) for text in messages) == [False, True], messages
    for page in pages:
        await page.reload()
        await expect(page.get_by_text("1 present out of 1")).to_be_visible()


async def test_the_camera_button_reads_the_code_and_checks_in(server, new_page):
    event_id, doors, code = await door_and_ticket("gala-camera")
    page = await new_page(locale="en-US")
    # This Chromium has no camera and no BarcodeDetector: a stand-in for both, as a phone's browser gives them
    # (a blank video stream, and a detector that reads our code once the video plays).
    await page.add_init_script(f"""
        window.BarcodeDetector = class {{
            constructor(options) {{ this.formats = options.formats; }}
            async detect(video) {{ return video.readyState >= 2 ? [{{ rawValue: {code!r} }}] : []; }}
        }};
        navigator.mediaDevices.getUserMedia = async () => {{
            const canvas = document.createElement("canvas");
            canvas.width = 64; canvas.height = 64;
            canvas.getContext("2d").fillRect(0, 0, 64, 64);
            return canvas.captureStream(10);
        }};
    """)
    await log_in(page, doors[0])
    await page.goto(f"/manage/events/{event_id}/checkin/")
    await page.get_by_role("button", name="Scan with the camera").click()
    await expect(page.get_by_role("status").filter(has_text="Alice Martin")).to_contain_text("is checked in")
    await expect(page.get_by_text("1 present out of 1")).to_be_visible()


async def test_without_a_barcode_detector_the_code_is_typed(server, new_page):
    event_id, doors, _code = await door_and_ticket("gala-sans-camera")
    page = await new_page(locale="en-US")
    await log_in(page, doors[0])
    await page.goto(f"/manage/events/{event_id}/checkin/")
    await expect(page.get_by_label("Ticket code")).to_be_visible()
    await expect(page.get_by_role("button", name="Scan with the camera")).to_be_hidden()
