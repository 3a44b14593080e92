"""Status transitions have one owner, events/rules/lifecycle.py (TRANSITIONS and can_transition). For an
event in each status, the management page offers a transition's button exactly when the service accepts
it, and an imported calendar cancels exactly the events the cancel transition may reach."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import AsyncClient

from events.models import Event, EventStatus, utcnow
from events.ops import services as ops_services
from events.ops.ical_import import ImportedEvent
from events.rules import lifecycle
from events.rules.permissions import Actor
from events.staff import services as staff_services
from hyperion import db
from tests import factories, support

# The button each transition has on the management page (decline sits with approve: "review").
BUTTONS = {"submit": "submit/", "approve": "approve/", "decline": "decline/", "cancel": "cancel/"}


def test_the_owner_s_table():
    allowed = {(status.value, action) for status in EventStatus for action in lifecycle.TRANSITIONS
               if lifecycle.can_transition(status, action)}
    assert allowed == {("draft", "submit"), ("declined", "submit"), ("submitted", "approve"),
                       ("submitted", "decline"), ("approved", "cancel")}


@pytest.mark.parametrize("action", list(lifecycle.TRANSITIONS))
async def test_the_page_offers_a_transition_exactly_when_the_service_accepts_it(action):
    association_id = await factories.association(slug="club", name="Club")
    staff_id = await factories.user(email="staff@etu.test", display_name="Staff", is_staff=True)
    client = AsyncClient()
    await support.login(client, staff_id)
    for status in EventStatus:
        event_id = await factories.event(association_id=association_id, slug=f"e-{status.value}",
                                              status=status)
        page = (await client.get(f"/manage/events/{event_id}/")).content.decode()
        offered = f'/manage/events/{event_id}/{BUTTONS[action]}"' in page
        async with db.write_session() as session:
            try:
                event = await staff_services.event_transition(session, actor=Actor(id=staff_id, is_staff=True),
                                                              event_id=event_id, action=action, reason="Motif")
            except staff_services.IllegalTransition:
                accepted = False
            else:
                accepted = True
                assert event.status == lifecycle.target_of(action)
        assert offered is accepted is lifecycle.can_transition(status, action), (status, action)


async def test_an_imported_cancellation_cancels_exactly_what_the_cancel_transition_may_reach():
    association_id = await factories.association(slug="club", name="Club")
    starts = (utcnow() + timedelta(days=5)).replace(microsecond=0)
    uids = {}
    for status in EventStatus:
        uids[status] = f"{status.value}@club"
        await factories.event(association_id=association_id, slug=f"e-{status.value}", status=status,
                                   starts_at=starts, ical_uid=uids[status], title="Atelier")
    items = [ImportedEvent(uid=uid, title="Atelier", description="", location="", category="party",
                           starts_at=starts, ends_at=starts + timedelta(hours=3), all_day=False, cancelled=True)
             for uid in uids.values()]
    async with db.write_session() as session:
        await ops_services.events_import(session, association_slug="club", events=items)
    async with db.read_session() as session:
        for status, uid in uids.items():
            after = (await session.execute(Event.__table__.select().where(Event.ical_uid == uid))).one().status
            expected = lifecycle.target_of("cancel") if lifecycle.can_transition(status, "cancel") else status
            assert after == expected, status
