"""A confirmed student's ticket: on My events, on its own page (QR code and the code to type), and in the
confirmation e-mail as a PNG; nobody else's, and only while the seat is confirmed."""

from __future__ import annotations

import struct

from django.test import AsyncClient
from sqlalchemy import select

from events.models import Registration
from events.rules import tickets
from hyperion import db
from tests import factories, support
from tests.notifications.test_notifications import register, send, text_of


async def student(user_id: int) -> AsyncClient:
    client = AsyncClient()
    client.cookies["django_language"] = "en"
    await support.login(client, user_id)
    return client


async def test_a_confirmed_student_finds_their_ticket_and_nobody_else_does():
    event_id = await factories.event(association_id=await factories.association(), slug="gala", title="Gala",
                                     capacity=1)
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    bob = await factories.user(email="bob@etu.test", display_name="Bob")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    waiting = await factories.registration_id(event_id=event_id, user_id=bob)  # full: on the waitlist
    mine = await (await student(alice)).get("/me/events/")
    assert f'href="/me/tickets/{registration}/"' in mine.text and "My ticket" in mine.text
    page = await (await student(alice)).get(f"/me/tickets/{registration}/")
    code = tickets.ticket_code(event_id=event_id, registration_id=registration)
    assert page.status_code == 200 and "<svg" in page.text and code in page.text and "Alice" in page.text
    assert page["Cache-Control"] == "private, no-store"
    bobs = await student(bob)
    assert "/me/tickets/" not in (await bobs.get("/me/events/")).text  # waitlisted: no ticket yet
    assert (await bobs.get(f"/me/tickets/{registration}/")).status_code == 404  # Alice's
    assert (await bobs.get(f"/me/tickets/{waiting}/")).status_code == 404
    assert (await AsyncClient().get(f"/me/tickets/{registration}/")).status_code == 302  # log in first
    await factories.registration_leave(event_id=event_id, user_id=alice)
    assert (await (await student(alice)).get(f"/me/tickets/{registration}/")).status_code == 404  # left


async def test_the_confirmation_email_carries_the_ticket(smtp):
    event_id = await factories.event(association_id=await factories.association(), slug="gala", title="Gala")
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    await register(event_id, alice)
    await send()
    (message,) = smtp.inbox.messages
    async with db.read_session() as session:
        registration = (await session.execute(select(Registration.id).where(
            Registration.event_id == event_id, Registration.user_id == alice))).scalar_one()
    assert f"http://127.0.0.1:8000/me/tickets/{registration}/" in text_of(message)
    (png,) = [part for part in message.iter_attachments() if part.get_content_type() == "image/png"]
    assert png.get_filename() == "ticket.png"
    data = png.get_content()
    width, height = struct.unpack(">II", data[16:24])  # the PNG header's IHDR chunk
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and width == height > 100  # a square code, big enough to scan


async def test_my_events_link_and_the_ticket_page_follow_the_one_ticket_rule(monkeypatch):
    """rules.tickets.has_ticket decides both: bent, the link and the page change together (issue 16's one owner)."""
    event_id = await factories.event(association_id=await factories.association(), slug="gala", title="Gala")
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    client = await student(alice)
    assert f'href="/me/tickets/{registration}/"' in (await client.get("/me/events/")).text
    monkeypatch.setattr(tickets, "has_ticket", lambda **_kwargs: False)
    assert "/me/tickets/" not in (await client.get("/me/events/")).text
    assert (await client.get(f"/me/tickets/{registration}/")).status_code == 404
