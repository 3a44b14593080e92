"""The management area's attendee pages: the list and waitlist, adding and removing students,
check-in and the CSV export."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from sqlalchemy import select

from events.models import (
    EventStatus,
    Registration,
    RegistrationStatus,
    utcnow,
)
from tests import factories, support
from tests.staff.pages import (
    after_redirect,
    audit_all,
    client_for,
    registration_at,
    registration_states,
    students,
    team,
    url,
)

# Attendees.

async def test_attendees_page_lists_confirmed_and_the_waitlist_with_positions_and_searches(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=2)
    alice = await factories.user(email="alice@etu.test", display_name="Alice Martin")
    bob = await factories.user(email="bob@etu.test", display_name="Bob Durand")
    carl = await factories.user(email="carl@etu.test", display_name="Carl Petit")
    dana = await factories.user(email="dana@etu.test", display_name="Dana Roux")
    for user_id in (bob, alice):
        await factories.registration(event_id=event_id, user_id=user_id)
    for user_id in (dana, carl):  # the event is full: in line
        await factories.registration(event_id=event_id, user_id=user_id)
    page = await (await client_for(people.editor)).get(url("staff_attendees", event_id))
    assert page.status_code == 200
    assert "2 / 2 seats taken · 2 on the waitlist" in page.text
    assert page.text.index("Alice Martin") < page.text.index("Bob Durand")
    assert re.search(r"<td[^>]*>1</td><td>Dana Roux</td>.*<td[^>]*>2</td><td>Carl Petit</td>", page.text, re.S)
    assert "Add a student" not in page.text and "/remove/" not in page.text  # editors only look
    searched = (await (await client_for(people.editor)).get(url("staff_attendees", event_id), {"q": "DUR"})).text
    assert "Bob Durand" in searched and "Alice Martin" not in searched and "Dana Roux" not in searched
    by_email = (await (await client_for(people.editor)).get(url("staff_attendees", event_id), {"q": "carl@"})).text
    assert "Carl Petit" in by_email and "Bob Durand" not in by_email


async def test_manager_adds_students_by_email_confirmed_then_waitlisted_with_audit_entries(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=1)
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    bob = await factories.user(email="bob@etu.test", display_name="Bob")
    manager = await client_for(people.manager)
    page = await manager.get(url("staff_attendees", event_id))
    assert page.status_code == 200 and "Add a student" in page.text

    added = await manager.post(url("staff_attendees", event_id), {"email": "  ALICE@etu.test "})
    assert added["Location"] == url("staff_attendees", event_id)
    assert "Added: the place is confirmed." in await after_redirect(manager, added)
    waitlisted = await manager.post(url("staff_attendees", event_id), {"email": "bob@etu.test"})
    assert "The event is full: added to the waitlist, position 1." in await after_redirect(manager, waitlisted)
    assert await registration_states(session, event_id) == {
        alice: RegistrationStatus.CONFIRMED, bob: RegistrationStatus.WAITLISTED}
    entries = await audit_all(session, "registration.added")
    assert [(entry.actor_id, entry.changes["user_id"], entry.changes["status"]) for entry in entries] == [
        (people.manager, [None, alice], [None, "confirmed"]), (people.manager, [None, bob], [None, "waitlisted"])]
    assert all(entry.changes["event_id"] == [None, event_id] for entry in entries)


@pytest.mark.parametrize(("email", "error"), [
    ("nobody@etu.test", "No account with this e-mail address."),
    ("not-an-email", "Enter a valid email address."),
    ("", "This field is required."),
    ("alice@etu.test", "You are already registered for this event."),
])
async def test_adding_an_unknown_invalid_or_registered_student_is_a_form_error(session, email, error):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="gala")
    alice = await factories.user(email="alice@etu.test")
    await factories.registration(event_id=event_id, user_id=alice)
    response = await (await client_for(people.manager)).post(url("staff_attendees", event_id), {"email": email})
    assert response.status_code == 400 and error in response.text
    assert await registration_states(session, event_id) == {alice: RegistrationStatus.CONFIRMED}
    assert await audit_all(session) == []


async def test_staff_may_add_a_student_after_registration_closed(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala",
                                          registration_closes_at=utcnow() - timedelta(hours=1))
    alice = await factories.user(email="alice@etu.test")
    response = await (await client_for(people.manager)).post(url("staff_attendees", event_id),
                                                             {"email": "alice@etu.test"})
    assert response.status_code == 302
    assert await registration_states(session, event_id) == {alice: RegistrationStatus.CONFIRMED}


async def test_adding_to_an_unpublished_event_is_refused(session):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="gala", status=EventStatus.DRAFT)
    await factories.user(email="alice@etu.test")
    response = await (await client_for(people.manager)).post(url("staff_attendees", event_id),
                                                             {"email": "alice@etu.test"})
    assert response.status_code == 400 and "Registration is not open for this event." in response.text
    assert await registration_states(session, event_id) == {} and await audit_all(session) == []


async def test_removing_an_attendee_asks_first_then_promotes_the_first_in_line(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", title="Gala", capacity=1)
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    bob = await factories.user(email="bob@etu.test", display_name="Bob")
    carl = await factories.user(email="carl@etu.test", display_name="Carl")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    for user_id in (bob, carl):  # the event is full: in line
        await factories.registration(event_id=event_id, user_id=user_id)
    manager = await client_for(people.manager)
    question = await manager.get(url("staff_attendee_remove", event_id, registration))
    assert question.status_code == 200 and "Remove this attendee?" in question.text
    assert "Alice will lose their place at &#39;Gala&#39;; the first on the waitlist gets it." in question.text
    assert (await registration_states(session, event_id))[alice] == RegistrationStatus.CONFIRMED

    response = await manager.post(url("staff_attendee_remove", event_id, registration))
    assert response["Location"] == url("staff_attendees", event_id)
    assert "Removed. 1 promoted from the waitlist." in await after_redirect(manager, response)
    assert await registration_states(session, event_id) == {
        alice: RegistrationStatus.CANCELLED, bob: RegistrationStatus.CONFIRMED, carl: RegistrationStatus.WAITLISTED}
    [entry] = await audit_all(session, "registration.removed")
    assert entry.actor_id == people.manager and entry.object_id == registration
    assert entry.changes == {"status": ["confirmed", "cancelled"], "user_id": [alice, None],
                             "promoted_user_ids": [None, [bob]]}
    # Removing it again: it is gone.
    assert (await manager.get(url("staff_attendee_remove", event_id, registration))).status_code == 404
    assert (await manager.post(url("staff_attendee_remove", event_id, registration))).status_code == 404


async def test_removing_a_waitlisted_student_promotes_nobody(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=1)
    alice, bob = await students(2)
    await factories.registration(event_id=event_id, user_id=alice)
    waiting = await factories.registration_id(event_id=event_id, user_id=bob)  # the event is full: in line
    manager = await client_for(people.manager)
    response = await manager.post(url("staff_attendee_remove", event_id, waiting))
    page = await after_redirect(manager, response)
    assert "Removed." in page and "promoted" not in page
    assert await registration_states(session, event_id) == {
        alice: RegistrationStatus.CONFIRMED, bob: RegistrationStatus.CANCELLED}


async def test_check_in_marks_present_and_undoes_with_audit_entries(session):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=2)
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    bob = await factories.user(email="bob@etu.test", display_name="Bob")
    carl = await factories.user(email="carl@etu.test", display_name="Carl Waiting")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    await factories.registration(event_id=event_id, user_id=bob)
    await factories.registration(event_id=event_id, user_id=carl)  # the event is full: in line
    editor = await client_for(people.editor)
    page = await editor.get(url("staff_checkin", event_id))
    assert page.status_code == 200
    assert "0 present out of 2" in page.text and "Alice" in page.text and "Carl Waiting" not in page.text

    marked = await editor.post(url("staff_checkin_mark", event_id, registration))
    assert marked["Location"] == url("staff_checkin", event_id)
    checked_in_at = (await session.execute(select(Registration.checked_in_at)
                                           .where(Registration.id == registration))).scalar_one()
    assert checked_in_at is not None
    page = (await editor.get(url("staff_checkin", event_id))).text
    assert "1 present out of 2" in page and 'value="no"' in page and "Undo" in page

    undone = await editor.post(url("staff_checkin_mark", event_id, registration), {"present": "no"})
    assert undone.status_code == 302
    assert (await session.execute(select(Registration.checked_in_at)
                                  .where(Registration.id == registration))).scalar_one() is None
    assert "0 present out of 2" in (await editor.get(url("staff_checkin", event_id))).text
    entries = await audit_all(session)
    assert [entry.action for entry in entries] == ["registration.checked_in", "registration.check_in_undone"]
    assert entries[0].changes["checked_in_at"][0] is None and entries[0].changes["checked_in_at"][1]
    assert entries[1].changes["checked_in_at"][1] is None


async def test_check_in_of_a_waitlisted_student_is_404(session):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=1)
    alice, bob = await students(2)
    await factories.registration(event_id=event_id, user_id=alice)
    waiting = await factories.registration_id(event_id=event_id, user_id=bob)  # the event is full: in line
    response = await (await client_for(people.editor)).post(url("staff_checkin_mark", event_id, waiting))
    assert response.status_code == 404
    assert await audit_all(session) == []


async def test_check_in_search_keeps_the_query_after_a_click():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala")
    marie = await factories.user(email="marie@etu.test", display_name="Jean & Marie")
    registration = await factories.registration_id(event_id=event_id, user_id=marie)
    editor = await client_for(people.editor)
    assert "Jean &amp; Marie" in (await editor.get(url("staff_checkin", event_id), {"q": "Jean & Marie"})).text
    # (An "undo" on someone not checked in: the search box's text must come back whole all the same.)
    response = await editor.post(url("staff_checkin_mark", event_id, registration),
                                 {"q": "Jean & Marie #1", "present": "no"})
    location = urlsplit(response["Location"])
    assert location.path == url("staff_checkin", event_id)
    assert parse_qs(location.query) == {"q": ["Jean & Marie #1"]}, response["Location"]


async def test_csv_export_is_utf8_with_bom_and_a_header_and_neutralises_formulas():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=5)
    names = ['=HYPERLINK("x")', "Éloïse Dupré", "+33 6 12", "-2+3", "@SUM(A1)", "\tTab", "\rRetour"]
    user_ids = [await factories.user(email=f"u{number}@etu.test", display_name=name,
                                     promo=2027 if number == 1 else None) for number, name in enumerate(names[:5])]
    # raw: the services trim a name, and these keep the tab and carriage return a spreadsheet would read as the
    # start of a formula.
    user_ids += [await support.user_create(email=f"u{number}@etu.test", display_name=name)
                 for number, name in enumerate(names[5:], start=5)]
    queued = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)  # 10:00 in Paris
    checked_in = datetime(2030, 6, 1, 18, 5, tzinfo=UTC)  # 20:05 in Paris (summer time)
    for number, user_id in enumerate(user_ids):
        # raw: the queue and check-in times the export shows (the services stamp now, and decide the status).
        await registration_at(event_id, user_id,
                              RegistrationStatus.CONFIRMED if number < 5 else RegistrationStatus.WAITLISTED,
                              queued + timedelta(minutes=number), checked_in if number == 1 else None)

    response = await (await client_for(people.editor)).get(url("staff_attendees_csv", event_id))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="attendees-gala.csv"'
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf" + b'"Name","E-mail","Promo","Status","Waitlist position",'
                          b'"Registered at","Checked in at"\r\n')
    text = raw.decode("utf-8")
    assert "\"'=HYPERLINK(\"\"x\"\")\"" in text and "\"Éloïse Dupré\"" in text
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert rows == [
        ["Name", "E-mail", "Promo", "Status", "Waitlist position", "Registered at", "Checked in at"],
        ["'+33 6 12", "u2@etu.test", "", "Confirmed", "", "2030-01-15 10:02", ""],
        ["'-2+3", "u3@etu.test", "", "Confirmed", "", "2030-01-15 10:03", ""],
        ["'=HYPERLINK(\"x\")", "u0@etu.test", "", "Confirmed", "", "2030-01-15 10:00", ""],
        ["'@SUM(A1)", "u4@etu.test", "", "Confirmed", "", "2030-01-15 10:04", ""],
        ["Éloïse Dupré", "u1@etu.test", "2027", "Confirmed", "", "2030-01-15 10:01", "2030-06-01 20:05"],
        ["'\tTab", "u5@etu.test", "", "Waitlisted", "1", "2030-01-15 10:05", ""],
        ["'\rRetour", "u6@etu.test", "", "Waitlisted", "2", "2030-01-15 10:06", ""],
    ]



@pytest.mark.parametrize("separator", [",", ";"])
async def test_csv_export_is_quoted_and_no_cell_is_a_formula_whatever_separator_a_spreadsheet_picks(separator):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=5)
    names = ["a;=1+1;b", "c,+2,d", "e|@SUM(A1)", 'f; "=2+2"', "Jean-Pierre Martin"]
    for number, name in enumerate(names):
        await factories.registration(
            event_id=event_id, user_id=await factories.user(email=f"u{number}@etu.test", display_name=name))
    client = await client_for(people.editor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"

    text = (await client.get(url("staff_attendees_csv", event_id))).content.decode("utf-8").removeprefix("\ufeff")

    lines = text.splitlines()
    assert all(line.startswith('"') and line.endswith('"') for line in lines)  # every field quoted
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
    cells = [cell.strip(' "') for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    assert rows[0][0].startswith("Nom")  # French headers, and French statuses under them
    if separator == ",":
        assert {row[3] for row in rows[1:]} == {"Confirmée"}
        assert "Jean-Pierre Martin" in cells  # a hyphen inside a name is left alone
