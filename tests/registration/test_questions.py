"""Registration questions (events/rules/questions.py, events/registration/questions.py, events/staff/questions.py):
organisers ask them, students answer when registering and change their answers until the deadline, the
attendees list, its CSV and the questions page show them with counts; wrong, stale or hostile input gets a
clear message and leaves the database as it was."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.test import AsyncClient
from sqlalchemy import select

from events.models import AuditEntry, Event, Registration, RegistrationAnswers, RegistrationStatus, utcnow
from events.registration import lottery
from events.rules import questions as rules
from events.rules.permissions import Actor
from events.staff import questions as staff_questions
from events.views import registration as registration_views
from hyperion import db
from tests import factories, support
from tests.staff.pages import client_for, team, url

EN = {"Accept-Language": "en"}


async def asked(event_id: int) -> tuple[rules.Question, ...]:
    async with db.read_session() as session:
        event = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
        return rules.questions_of(event)


async def stored_answers() -> dict[int, dict]:
    async with db.read_session() as session:
        rows = await session.execute(select(RegistrationAnswers.user_id, RegistrationAnswers.answers))
        return {row.user_id: row.answers for row in rows}


async def registrations(event_id: int) -> dict[int, RegistrationStatus]:
    async with db.read_session() as session:
        rows = await session.execute(select(Registration.user_id, Registration.status)
                                     .where(Registration.event_id == event_id))
        return {row.user_id: row.status for row in rows}


async def gala_with_questions(**event_fields):
    """A published gala asking a T-shirt size (required), a diet (text) and whether the student brings a +1."""
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", title="Gala", **event_fields)
    manager = Actor(id=people.manager, is_staff=False, roles={people.bde: "manager"})
    sizes = await _add(manager, event_id, kind="choice", label="T-shirt size", choices=["S", "M", "L"], required=True)
    diet = await _add(manager, event_id, kind="text", label="Dietary needs")
    guest = await _add(manager, event_id, kind="yes_no", label="Do you bring a +1?")
    return people, event_id, sizes, diet, guest


async def _add(actor, event_id, **question) -> rules.Question:
    async with db.write_session() as session:
        return await staff_questions.question_add(session, actor=actor, event_id=event_id, **question)


async def student_client(email: str = "alice@etu.test", name: str = "Alice") -> tuple[AsyncClient, int]:
    client = AsyncClient()
    user_id = await factories.user(email=email, display_name=name)
    await support.login(client, user_id)
    return client, user_id


def answer(question: rules.Question, value: str) -> dict[str, str]:
    """An answer as the page's form sends it (with the marker of a form that asks questions)."""
    return {"questions": "1", f"answer_{question.id}": value}


async def test_the_page_asks_the_questions_and_registering_stores_the_answers():
    _people, event_id, sizes, diet, guest = await gala_with_questions()
    client, alice = await student_client()
    page = (await client.get("/events/gala/", headers=EN)).text
    for label in ("T-shirt size", "Dietary needs", "Do you bring a +1?"):
        assert label in page
    assert f'name="answer_{sizes.id}"' in page and 'action="/events/gala/register/"' in page
    response = await client.post("/events/gala/register/", {**answer(sizes, "M"), **answer(diet, "Végétarien"),
                                                            **answer(guest, "yes")}, headers=EN)
    assert response.status_code == 302
    assert await registrations(event_id) == {alice: RegistrationStatus.CONFIRMED}
    assert await stored_answers() == {alice: {sizes.id: "M", diet.id: "Végétarien", guest.id: "yes"}}
    mine = (await client.get("/events/gala/", headers=EN)).text
    assert "Your answers to the organisers" in mine and "Végétarien" in mine
    assert 'action="/events/gala/answers/"' in mine  # still open: the form to change them


@pytest.mark.parametrize(("answers", "error"), [
    ({}, "This field is required."),
    ({"size": "XXL"}, "Select a valid choice."),
    ({"size": "M", "diet": "x" * 501}, "at most 500 characters"),
    ({"size": "M", "diet": "Sans \u202egluten"}, "invisible control characters"),
    ({"size": "M", "guest": "maybe"}, "Select a valid choice."),
], ids=["required-missing", "not-a-choice", "too-long", "bidi", "not-yes-or-no"])
async def test_wrong_answers_get_the_questions_again_with_the_error_and_nothing_is_written(answers, error):
    _people, event_id, sizes, diet, guest = await gala_with_questions()
    client, _alice = await student_client()
    names = {"size": sizes, "diet": diet, "guest": guest}
    data = {"questions": "1", **{f"answer_{names[key].id}": value for key, value in answers.items()}}
    response = await client.post("/events/gala/register/", data, headers=EN)
    assert response.status_code == 400 and error in response.text
    assert "T-shirt size" in response.text and 'action="/events/gala/register/"' in response.text
    assert await registrations(event_id) == {} and await stored_answers() == {}


async def test_a_form_from_before_the_questions_gets_them_and_nothing_is_written():
    """A page served before the questions were added posts no answers (and the event is not kept here): the
    registration service, under the event's lock, sends the student to the questions."""
    _people, event_id, sizes, _diet, _guest = await gala_with_questions()
    client, alice = await student_client()
    stale = await client.post("/events/gala/register/", {}, headers=EN)
    assert stale.status_code == 400 and "ask a few questions: answer them to register" in stale.text
    assert f'name="answer_{sizes.id}"' in stale.text and 'name="questions" value="1"' in stale.text
    assert await registrations(event_id) == {} and await stored_answers() == {}
    answered = await client.post("/events/gala/register/", {"questions": "1", **answer(sizes, "S")}, headers=EN)
    assert answered.status_code == 302 and await registrations(event_id) == {alice: RegistrationStatus.CONFIRMED}


async def test_answers_change_until_the_deadline_and_not_after():
    _people, event_id, sizes, diet, _guest = await gala_with_questions()
    client, alice = await student_client()
    await client.post("/events/gala/register/", answer(sizes, "S"), headers=EN)
    changed = await client.post("/events/gala/answers/", {**answer(sizes, "L"), **answer(diet, "Halal")},
                                headers=EN)
    assert changed.status_code == 302
    assert "Your answers are saved." in (await client.get("/events/gala/", headers=EN)).text
    assert await stored_answers() == {alice: {sizes.id: "L", diet.id: "Halal"}}
    async with db.write_session() as session, session.begin():  # raw: the deadline passed (time moving on)
        await session.execute(Event.__table__.update().where(Event.id == event_id)
                              .values(answers_close_at=utcnow() - timedelta(minutes=1)))
    late = await client.post("/events/gala/answers/", answer(sizes, "S"), headers=EN)
    assert late.status_code == 400 and "can no longer be changed" in late.text
    assert await stored_answers() == {alice: {sizes.id: "L", diet.id: "Halal"}}
    page = (await client.get("/events/gala/", headers=EN)).text
    assert "Answers can no longer be changed." in page and 'action="/events/gala/answers/"' not in page


async def test_a_question_removed_after_answers_exist_takes_its_answers_and_a_stale_form_still_works():
    people, event_id, sizes, diet, guest = await gala_with_questions()
    client, alice = await student_client()
    await client.post("/events/gala/register/", {**answer(sizes, "M"), **answer(diet, "Vegan"),
                                                 **answer(guest, "no")}, headers=EN)
    manager = await client_for(people.manager)
    confirm = await manager.get(url("staff_question_remove", event_id, diet.id))
    assert confirm.status_code == 200 and "the 1 answers given to it are deleted" in confirm.text
    removed = await manager.post(url("staff_question_remove", event_id, diet.id))
    assert removed.status_code == 302
    assert [question.id for question in await asked(event_id)] == [sizes.id, guest.id]
    assert await stored_answers() == {alice: {sizes.id: "M", guest.id: "no"}}
    async with db.read_session() as session:
        entry = (await session.execute(select(AuditEntry.changes).where(
            AuditEntry.action == "event.question_removed"))).scalar_one()
    assert entry["answers_removed"] == [None, 1]
    # Bob's page was built before the removal: his answer to the removed question is not read.
    bob_client, bob = await student_client("bob@etu.test", "Bob")
    response = await bob_client.post("/events/gala/register/", {**answer(sizes, "S"), **answer(diet, "Vegan")},
                                     headers=EN)
    assert response.status_code == 302 and (await registrations(event_id))[bob] == RegistrationStatus.CONFIRMED
    assert (await stored_answers())[bob] == {sizes.id: "S"}
    # The removal page of a question that is gone: 404, nothing changes.
    assert (await manager.post(url("staff_question_remove", event_id, diet.id))).status_code == 404


async def test_a_required_question_added_after_registering_is_asked_on_the_page():
    people, event_id, sizes, _diet, _guest = await gala_with_questions()
    client, alice = await student_client()
    await client.post("/events/gala/register/", answer(sizes, "M"), headers=EN)
    manager = Actor(id=people.manager, is_staff=False, roles={people.bde: "manager"})
    badge = await _add(manager, event_id, kind="text", label="Name on the badge", required=True)
    page = (await client.get("/events/gala/", headers=EN)).text
    assert "The organisers added a question that needs your answer." in page
    await client.post("/events/gala/answers/", {**answer(sizes, "M"), **answer(badge, "Ali")}, headers=EN)
    assert (await stored_answers())[alice] == {sizes.id: "M", badge.id: "Ali"}
    assert "added a question that needs your answer" not in (await client.get("/events/gala/", headers=EN)).text


async def test_the_attendees_list_its_csv_and_the_questions_page_show_the_answers_with_counts():
    people, event_id, sizes, diet, guest = await gala_with_questions()
    for number, (size, bring) in enumerate([("M", "yes"), ("M", "no"), ("L", "yes")]):
        client, _user = await student_client(f"s{number}@etu.test", f"Student {number}")
        await client.post("/events/gala/register/", {**answer(sizes, size), **answer(guest, bring),
                                                     **answer(diet, "=HYPERLINK(\"x\")" if number == 0 else "")},
                          headers=EN)
    manager = await client_for(people.manager)
    listing = (await manager.get(url("staff_attendees", event_id))).text
    assert "<strong>T-shirt size</strong> M" in listing and "<strong>Do you bring a +1?</strong> Yes" in listing
    assert re.search(r"M: <strong>2</strong>", listing)  # the counts per answer, in the attendees list too
    counts = (await manager.get(url("staff_event_questions", event_id))).text
    assert re.search(r"M: <strong>2</strong>", counts) and re.search(r"L: <strong>1</strong>", counts)
    assert re.search(r"S: <strong>0</strong>", counts) and re.search(r"Yes: <strong>2</strong>", counts)
    assert "1 answer" in counts  # the text question: how many answered
    statistics = (await manager.get(url("staff_event_statistics", event_id))).text
    assert "Answers to the registration questions" in statistics
    assert re.search(r"M: <strong>2</strong>", statistics) and re.search(r"No: <strong>1</strong>", statistics)
    exported = (await manager.get(url("staff_attendees_csv", event_id))).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0][-3:] == ["T-shirt size", "Dietary needs", "Do you bring a +1?"]
    by_name = {row[0]: row[-3:] for row in rows[1:]}
    assert by_name["Student 1"] == ["M", "", "No"] and by_name["Student 2"] == ["L", "", "Yes"]
    assert by_name["Student 0"][1] == "'=HYPERLINK(\"x\")"  # no formula runs in a spreadsheet


@pytest.mark.parametrize(("fields", "error"), [
    ({"kind": "choice", "label": "Taille", "choices": "M"}, "Give at least two choices"),
    ({"kind": "choice", "label": "Taille", "choices": "\n".join(f"C{n}" for n in range(21))}, "At most 20 choices"),
    ({"kind": "text", "label": "x" * 201}, "at most 200 characters"),
    ({"kind": "text", "label": "Qui \u202eest là"}, "invisible control characters"),
    ({"kind": "file", "label": "Photo"}, "Select a valid choice."),
], ids=["one-choice", "too-many-choices", "long-label", "bidi", "unknown-kind"])
async def test_the_questions_form_refuses_wrong_questions_and_writes_nothing(fields, error):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", status="draft")
    editor = await client_for(people.editor)
    response = await editor.post(url("staff_event_questions", event_id), {**fields, "action": "add"})
    assert response.status_code == 400 and error in response.text
    assert await asked(event_id) == ()


async def test_editors_ask_questions_of_drafts_managers_of_published_events_and_ten_at_most():
    people = await team()
    draft = await factories.event(association_id=people.bde, slug="brouillon", status="draft")
    published = await factories.event(association_id=people.bde, slug="gala")
    editor = await client_for(people.editor)
    added = await editor.post(url("staff_event_questions", draft),
                              {"action": "add", "kind": "choice", "label": "Taille", "choices": "S\nM\nM\n L "})
    assert added.status_code == 302
    (question,) = await asked(draft)
    assert (question.kind, question.label, question.choices, question.required) == ("choice", "Taille",
                                                                                      ("S", "M", "L"), False)
    refused = await editor.post(url("staff_event_questions", published), {"action": "add", "kind": "text",
                                                                          "label": "Régime"})
    assert refused.status_code == 403 and await asked(published) == ()
    manager = await client_for(people.manager)
    for number in range(rules.QUESTIONS_MAX):
        await manager.post(url("staff_event_questions", published),
                           {"action": "add", "kind": "text", "label": f"Question {number}"})
    eleventh = await manager.post(url("staff_event_questions", published),
                                  {"action": "add", "kind": "text", "label": "One too many"})
    assert eleventh.status_code == 302 and len(await asked(published)) == rules.QUESTIONS_MAX
    assert "ten questions at most" in (await manager.get(eleventh["Location"])).text


async def test_a_lottery_with_questions_takes_its_entries_the_locked_way_with_their_answers():
    event_id = await factories.lottery_event(slug="tombola")
    async with db.read_session() as session:
        association_id = (await session.execute(select(Event.association_id)
                                                .where(Event.id == event_id))).scalar_one()
    staff = Actor(id=await factories.user(email="staff@etu.test", is_staff=True), is_staff=True,
                  roles={association_id: "manager"})
    size = await _add(staff, event_id, kind="choice", label="Taille", choices=["S", "M"], required=True)
    await lottery.draw_due()  # the drawer's look at the events waiting for their draw
    assert registration_views.lottery_opening("tombola") is None  # no quick entry: its answers come first
    client, alice = await student_client()
    refused = await client.post("/events/tombola/register/", {}, headers=EN)
    assert refused.status_code == 400 and await registrations(event_id) == {}
    entered = await client.post("/events/tombola/register/", answer(size, "S"), headers=EN)
    assert entered.status_code == 302
    assert await registrations(event_id) == {alice: RegistrationStatus.ENTERED}
    assert await stored_answers() == {alice: {size.id: "S"}}


async def test_the_overlap_warning_keeps_the_answers_for_register_anyway():
    _people, event_id, sizes, _diet, _guest = await gala_with_questions()
    client, alice = await student_client()
    async with db.read_session() as session:
        gala = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
    other = await factories.event(association_id=gala.association_id, slug="concert", starts_at=gala.starts_at)
    await factories.registration(event_id=other, user_id=alice)
    warning = await client.post("/events/gala/register/", answer(sizes, "L"), headers=EN)
    assert warning.status_code == 200 and "overlaps" in warning.text
    assert f'<input type="hidden" name="answer_{sizes.id}" value="L">' in warning.text
    anyway = await client.post("/events/gala/register/", {"confirm_overlap": "yes", **answer(sizes, "L")},
                               headers=EN)
    assert anyway.status_code == 302 and (await registrations(event_id))[alice] == RegistrationStatus.CONFIRMED


async def test_my_data_holds_my_answers_and_closing_the_account_deletes_them():
    _people, _event_id, sizes, _diet, _guest = await gala_with_questions()
    client, alice = await student_client()
    await client.post("/events/gala/register/", answer(sizes, "M"), headers=EN)
    data = (await client.get("/account/data.json")).json()
    assert data["answers"] == [{"event": "Gala", "event_slug": "gala", "updated_at": data["answers"][0]["updated_at"],
                                "answers": {"T-shirt size": "M"}}]
    async with db.write_session() as session:
        from events.ops import services as ops_services

        await ops_services.account_delete(session, user_id=alice)
    assert await stored_answers() == {}


async def test_only_a_live_registrant_changes_answers_and_nothing_is_written_for_the_others():
    _people, event_id, sizes, _diet, _guest = await gala_with_questions()
    stranger, _stranger_id = await student_client("bob@etu.test", "Bob")
    refused = await stranger.post("/events/gala/answers/", answer(sizes, "L"), headers=EN)
    assert refused.status_code == 400 and "registrants may change their answers: register first." in refused.text
    assert await stored_answers() == {}
    client, alice = await student_client()
    await client.post("/events/gala/register/", answer(sizes, "S"), headers=EN)
    await factories.registration_leave(event_id=event_id, user_id=alice)
    gone = await client.post("/events/gala/answers/", answer(sizes, "L"), headers=EN)
    assert gone.status_code == 400 and "registrants may change their answers" in gone.text
    assert await stored_answers() == {alice: {sizes.id: "S"}}
