"""The registration window has one owner, events/rules/window.py: the event page's button and its "opens on /
closes on / closed" line, the register view and the registration service all ask it. A window that has just
closed is closed on the page and in the service; one that is still open is open in both; and bending the
owner's rule bends them together."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from events.models import EventStatus, Registration, utcnow
from events.registration import leaving
from events.registration import services as registration_services
from events.rules import window
from hyperion import db
from tests import factories
from tests.rules import _pages


@pytest.fixture
async def windows():
    association_id = await factories.association(slug="club", name="Club")
    now = utcnow()
    starts = now + timedelta(days=3)

    async def event(slug: str, **columns) -> int:
        return await factories.event(association_id=association_id, slug=slug, title=slug, starts_at=starts,
                                          **columns)

    return {
        "just-closed": await event("just-closed", registration_closes_at=now - timedelta(seconds=1)),
        "closing-soon": await event("closing-soon", registration_closes_at=now + timedelta(hours=1)),
        "not-yet-open": await event("not-yet-open", registration_opens_at=now + timedelta(hours=1)),
        "just-opened": await event("just-opened", registration_opens_at=now - timedelta(seconds=1)),
        "cancelled": await event("cancelled", status=EventStatus.CANCELLED),
    }


OPEN = {"just-closed": False, "closing-soon": True, "not-yet-open": False, "just-opened": True, "cancelled": False}


async def _registered(event_id: int, user_id: int) -> bool:
    async with db.read_session() as session:
        return (await session.execute(select(Registration.id).where(
            Registration.event_id == event_id, Registration.user_id == user_id))).first() is not None


async def test_the_page_button_the_view_and_the_service_agree_at_the_window_s_edges(windows):
    client, student = await _pages.student_client()
    for slug, is_open in OPEN.items():
        page = (await client.get(f"/events/{slug}/")).content.decode()
        assert _pages.register_button(page, slug) is is_open, slug
        if slug == "just-closed":
            assert "Les inscriptions sont closes." in page
        if slug == "not-yet-open":  # within a day: the button is there, disabled, and counts down
            assert "Ouverture des inscriptions le" in page and "data-countdown" in page
        # The view: a student posting anyway (an old page) is registered exactly when the button was there.
        await client.post(f"/events/{slug}/register/", {"confirm_overlap": "yes"})
        assert await _registered(windows[slug], student) is is_open, slug
        # The service, for another student.
        other = await factories.user(email=f"other-{slug}@etu.test", display_name="Other")
        async with db.write_session() as session:
            if is_open:
                await registration_services.registration_create(session, event_id=windows[slug], user_id=other)
            else:
                with pytest.raises(registration_services.RegistrationClosed):
                    await registration_services.registration_create(session, event_id=windows[slug],
                                                                    user_id=other)


async def test_leaving_follows_the_owner_on_the_page_and_in_the_service(windows):
    association_id = await factories.association(slug="other", name="Other")
    now = utcnow()
    event_id = await factories.event(association_id=association_id, slug="no-leaving", title="No leaving",
                                          unregistration_closes_at=now - timedelta(seconds=1))
    client, student = await _pages.student_client()
    await factories.registration(event_id=event_id, user_id=student)
    page = (await client.get("/events/no-leaving/")).content.decode()
    assert 'action="/events/no-leaving/leave/"' not in page
    async with db.write_session() as session:
        with pytest.raises(leaving.UnregistrationClosed):
            await leaving.registration_leave(session, event_id=event_id, user_id=student)


async def test_bending_the_owner_s_rule_closes_the_page_and_the_service_together(windows, monkeypatch):
    monkeypatch.setattr(window, "registration_is_open", lambda event, now, opens_at=None: False)
    client, student = await _pages.student_client()
    page = (await client.get("/events/closing-soon/")).content.decode()
    assert not _pages.register_button(page, "closing-soon")
    async with db.write_session() as session:
        with pytest.raises(registration_services.RegistrationClosed):
            await registration_services.registration_create(session, event_id=windows["closing-soon"],
                                                            user_id=student)
