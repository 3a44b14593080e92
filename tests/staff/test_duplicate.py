"""Duplicate an event: its management page offers a copy to whoever may create the association's events;
the new-event form starts from every field but its moments (the editor picks new dates) and saves a new
draft that asks the same registration questions (under ids of its own); the original is untouched; another
association's event cannot be copied (404)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from events.models import Event, EventStatus, Role, utcnow
from events.rules import questions as question_rules
from events.rules.permissions import Actor
from events.staff import questions as staff_questions
from hyperion import db
from tests import factories
from tests.staff.pages import audit_all, client_for, event_fields, event_row, paris, team, typed, url


async def test_an_editor_copies_an_event_into_a_new_draft_with_new_dates(session):
    people = await team()
    source = await factories.event(association_id=people.bde, slug="gala", title="Gala d'hiver",
                                   location="Grand Hall", capacity=120, description="Tenue de soirée.",
                                   offer_hours=12, registration_opens_at=utcnow() + timedelta(days=1))
    editor = await client_for(people.editor)
    page = (await editor.get(url("staff_event", source))).content.decode()
    assert f'href="/manage/events/new/?from={source}"' in page
    form = (await editor.get(url("staff_event_new") + f"?from={source}")).content.decode()
    assert "A copy of 'Gala d&#39;hiver': choose its dates" in form
    assert 'name="title" value="Gala d&#x27;hiver"' in form and 'name="location" value="Grand Hall"' in form
    assert 'name="capacity" value="120"' in form and 'name="offer_hours" value="12"' in form
    assert "Tenue de soirée." in form
    assert re.search(r'name="starts_at"(?![^>]*value=)', form) and re.search(
        r'name="registration_opens_at"(?![^>]*value=)', form)  # the moments are the editor's to choose
    starts = paris(2031, 3, 14, 20)
    created = await editor.post(url("staff_event_new"), event_fields(
        people.bde, starts=starts, title="Gala d'hiver", location="Grand Hall", capacity="120",
        description="Tenue de soirée.", offer_hours="12", registration_opens_at=typed(starts - timedelta(days=7))))
    assert created.status_code == 302
    rows = (await session.execute(select(Event.id, Event.status, Event.starts_at, Event.slug)
                                  .order_by(Event.id))).all()
    assert len(rows) == 2 and rows[1].status == EventStatus.DRAFT and rows[1].slug != "gala"
    assert rows[0].status == EventStatus.APPROVED  # the original is untouched


async def test_another_associations_event_cannot_be_copied_and_students_see_no_button():
    people = await team()
    theirs = await factories.event(association_id=people.bds, slug="match", title="Match")
    response = await (await client_for(people.editor)).get(url("staff_event_new") + f"?from={theirs}")
    assert response.status_code == 404
    ours = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    not_ours = await (await client_for(people.student)).get(url("staff_event", ours))
    assert not_ours.status_code in (403, 404)


async def test_a_copy_asks_the_same_questions_under_new_ids_and_the_original_keeps_its_own(session):
    people = await team()
    source = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    manager = Actor(id=people.manager, is_staff=False, roles={people.bde: Role.MANAGER})
    async with db.write_session() as writer:
        for question in ({"kind": "choice", "label": "Taille du t-shirt", "choices": ["S", "M", "L"],
                          "required": True}, {"kind": "yes_no", "label": "Un +1 ?"}):
            await staff_questions.question_add(writer, actor=manager, event_id=source, **question)
    editor = await client_for(people.editor)
    form = (await editor.get(url("staff_event_new") + f"?from={source}")).text
    assert "It asks the same 2 registration questions." in form
    created = await editor.post(url("staff_event_new") + f"?from={source}",
                                event_fields(people.bde, starts=paris(2031, 3, 14, 20), title="Gala"))
    assert created.status_code == 302
    copy = (await session.execute(select(Event.id).where(Event.id != source))).scalar_one()
    original = question_rules.questions_of(await event_row(session, source))
    copied = question_rules.questions_of(await event_row(session, copy))
    assert [(q.kind, q.label, q.choices, q.required) for q in copied] == [
        ("choice", "Taille du t-shirt", ("S", "M", "L"), True), ("yes_no", "Un +1 ?", (), False)]
    assert [(q.kind, q.label, q.choices, q.required) for q in original] == [
        (q.kind, q.label, q.choices, q.required) for q in copied]
    assert not {q.id for q in copied} & {q.id for q in original}  # answers never cross events
    [entry] = [entry for entry in await audit_all(session, "event.created") if entry.object_id == copy]
    assert entry.changes["copy_of"] == [None, source] and len(entry.changes["questions"][1]) == 2


async def test_a_copy_posted_for_another_associations_event_is_404_and_creates_nothing(session):
    people = await team()
    theirs = await factories.event(association_id=people.bds, slug="match", title="Match")
    response = await (await client_for(people.editor)).post(url("staff_event_new") + f"?from={theirs}",
                                                            event_fields(people.bde, title="Match"))
    assert response.status_code == 404
    assert (await session.execute(select(Event.id))).scalars().all() == [theirs]
