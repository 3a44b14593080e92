"""A published event that moves or is cancelled: its registrants hear the same thing, and their reminders move
the same way, whether the change was made in the management area or came from an imported calendar
(events/notifications/changes.py is the one owner of that rule)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from events.models import Event, OutboxMessage, utcnow
from events.ops import services as ops_services
from events.ops.ical_import import ImportedEvent
from events.outbox import reminder_time
from events.registration import services as registration_services
from events.rules.permissions import Actor
from events.staff import services as staff_services
from hyperion import db
from tests import factories


async def _published_event_with_a_registrant(*, slug: str, association_id: int, starts_at, uid: str | None) -> int:
    event_id = await factories.event(association_id=association_id, slug=slug, title="Atelier théâtre",
                                          starts_at=starts_at, location="Salle A", ical_uid=uid)
    student = await factories.user(email=f"{slug}@etu.test", display_name=slug)
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event_id, user_id=student)
    return event_id


def _imported(uid: str, *, starts_at, location: str = "Salle A", cancelled: bool = False,
              title: str = "Atelier théâtre") -> ImportedEvent:
    return ImportedEvent(uid=uid, title=title, description="", location=location, category="party",
                         starts_at=starts_at, ends_at=starts_at + timedelta(hours=3), all_day=False,
                         cancelled=cancelled)


async def _what_registrants_get(event_id: int) -> dict:
    async with db.read_session() as session:
        event = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
        messages = (await session.execute(
            select(OutboxMessage.kind, OutboxMessage.status, OutboxMessage.send_after, OutboxMessage.payload)
            .where(OutboxMessage.event_id == event_id).order_by(OutboxMessage.id))).all()
    return {
        "sequence": event.sequence,
        "changed_banner": event.changed_at is not None,
        "messages": sorted((kind, status.value, payload.get("changed") and tuple(payload["changed"]))
                           for kind, status, _send_after, payload in messages if kind != "event.reminder"),
        "reminders": [(status.value, send_after == reminder_time(event.starts_at))
                      for kind, status, send_after, _payload in messages if kind == "event.reminder"],
    }


@pytest.mark.parametrize("change", ["moved", "new place", "cancelled", "new title"])
async def test_registrants_hear_of_an_imported_change_as_of_the_same_edit_in_the_management_area(change):
    association_id = await factories.association(slug="theatre", name="Théâtre")
    start = (utcnow() + timedelta(days=10)).replace(microsecond=0)
    edited = await _published_event_with_a_registrant(slug="edited", association_id=association_id,
                                                      starts_at=start, uid=None)
    imported = await _published_event_with_a_registrant(slug="imported", association_id=association_id,
                                                        starts_at=start, uid="atelier-1@club")
    before = await _what_registrants_get(imported)
    assert before == await _what_registrants_get(edited)
    assert before["reminders"] == [("pending", True)]

    new_start = start + timedelta(days=2)
    staff = Actor(id=await factories.user(email="staff@etu.test", display_name="Staff", is_staff=True),
                  is_staff=True)
    async with db.write_session() as session:
        if change == "cancelled":
            await staff_services.event_transition(session, actor=staff, event_id=edited, action="cancel",
                                                  reason="Salle fermée")
        elif change == "moved":
            await staff_services.event_update(session, actor=staff, event_id=edited, values={
                "starts_at": new_start, "ends_at": new_start + timedelta(hours=3)})
        elif change == "new title":
            await staff_services.event_update(session, actor=staff, event_id=edited,
                                              values={"title": "Atelier théâtre (complet)"})
        else:
            await staff_services.event_update(session, actor=staff, event_id=edited, values={"location": "Salle B"})
    item = _imported("atelier-1@club", starts_at=new_start if change == "moved" else start,
                     location="Salle B" if change == "new place" else "Salle A", cancelled=change == "cancelled",
                     title="Atelier théâtre (complet)" if change == "new title" else "Atelier théâtre")
    async with db.write_session() as session:
        outcome = await ops_services.events_import(session, association_slug="theatre", events=[item])
    assert outcome.updated == 1

    after_import, after_edit = await _what_registrants_get(imported), await _what_registrants_get(edited)
    assert after_import == after_edit
    assert after_import["sequence"] == before["sequence"] + 1
    if change == "new title":  # calendars take the new title (a new SEQUENCE); nobody gets an e-mail
        assert after_import["messages"] == [("registration.confirmed", "pending", None)]
        assert after_import["changed_banner"] is False and after_import["reminders"] == [("pending", True)]
    elif change == "cancelled":
        assert after_import["messages"] == [("event.cancelled", "pending", None),
                                            ("registration.confirmed", "pending", None)]
        assert after_import["reminders"] == [("dropped", True)]  # dropped, where it was
    else:
        changed = ("ends_at", "starts_at") if change == "moved" else ("location",)
        assert after_import["messages"] == [("event.changed", "pending", changed),
                                            ("registration.confirmed", "pending", None)]
        assert after_import["changed_banner"] is True
        assert after_import["reminders"] == [("pending", True)]  # at the new date's eve
