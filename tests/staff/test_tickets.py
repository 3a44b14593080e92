"""Tickets and check-in by scan or by name (events/rules/tickets.py, events.staff.people): a confirmed
student's ticket (or a click on their name) lets one person in once; a second scan or click, by any door,
says when the first was; forged, replayed-elsewhere and cancelled tickets, and every check-in at a cancelled
event, are refused with a message, and nothing is written."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func, select

from events.models import AuditEntry, Registration, Role
from events.rules import tickets
from events.rules.permissions import Actor
from events.staff import people as staff_people
from hyperion import db
from tests import factories
from tests.staff.pages import after_redirect, client_for, team, url


def code_of(event_id: int, registration_id: int) -> str:
    return tickets.ticket_code(event_id=event_id, registration_id=registration_id)


async def checked_in(registration_id: int):
    async with db.read_session() as session:
        return (await session.execute(select(Registration.checked_in_at)
                                      .where(Registration.id == registration_id))).scalar_one()


async def audit_count() -> int:
    async with db.read_session() as session:
        return (await session.execute(select(func.count()).select_from(AuditEntry)
                                      .where(AuditEntry.action == "registration.checked_in"))).scalar_one()


def test_a_ticket_names_its_registration_and_cannot_be_made_or_changed_without_the_key():
    code = code_of(12, 345)
    assert tickets.ticket_read(code) == tickets.TicketId(12, 345)
    assert tickets.ticket_read(f" {code}\n") == tickets.TicketId(12, 345)  # a scanner's stray whitespace
    value, _, signature = code.partition(":")
    for forged in (f"12-346:{signature}", f"13-345:{signature}", "12-345", "", "x" * 5000, f"{code}x"):
        assert tickets.ticket_read(forged) is None, forged
    assert tickets.ticket_svg(code).startswith("<svg") and tickets.ticket_png(code).startswith(b"\x89PNG")


async def test_the_first_scan_checks_in_and_the_second_says_when():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=5)
    alice = await factories.user(email="alice@etu.test", display_name="Alice Martin")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    door = await client_for(people.editor)
    page = (await door.get(url("staff_checkin", event_id)))
    assert page.status_code == 200 and 'name="code"' in page.text
    assert "camera=(self)" in page["Permissions-Policy"]  # the scanner may film here, and only here
    first = await after_redirect(door, await door.post(url("staff_checkin_scan", event_id),
                                                       {"code": code_of(event_id, registration)}))
    when = await checked_in(registration)
    assert when is not None and re.search(r"Alice Martin is checked in \(\d\d:\d\d\)", first)
    assert "1 present out of 1" in first
    second = await after_redirect(door, await door.post(url("staff_checkin_scan", event_id),
                                                        {"code": code_of(event_id, registration)}))
    assert re.search(r"Alice Martin was already checked in at \d\d:\d\d\.", second)
    assert await checked_in(registration) == when and await audit_count() == 1


async def test_forged_foreign_and_cancelled_tickets_are_refused_and_nothing_is_written():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=5)
    other_event = await factories.event(association_id=people.bde, slug="bal", capacity=5)
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    bob = await factories.user(email="bob@etu.test", display_name="Bob")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    elsewhere = await factories.registration_id(event_id=other_event, user_id=alice)
    left = await factories.registration_id(event_id=event_id, user_id=bob)
    await factories.registration_leave(event_id=event_id, user_id=bob)
    door = await client_for(people.editor)
    cases = {
        "not a ticket of this site": code_of(event_id, registration)[:-2] + "xx",
        "for another event": code_of(other_event, elsewhere),
        "is not confirmed": code_of(event_id, left),
    }
    for told, code in cases.items():
        page = await after_redirect(door, await door.post(url("staff_checkin_scan", event_id), {"code": code}))
        assert told in page, told
    # A hostile or broken scan: the door's form says so on the page (400), never a 500.
    for code, told in (("x" * 10_000, "check that the whole code was read"), ("", "check that the whole code"),
                       (code_of(event_id, registration) + "\u202e", "invisible control characters")):
        refused = await door.post(url("staff_checkin_scan", event_id), {"code": code})
        assert refused.status_code == 400 and told in refused.text and 'aria-invalid="true"' in refused.text
        assert "0 present out of 1" in refused.text
    assert await checked_in(registration) is None and await checked_in(elsewhere) is None
    assert await checked_in(left) is None and await audit_count() == 0


@pytest.mark.postgres_only
@pytest.mark.parametrize("by", ["ticket", "name"])
async def test_two_door_staff_checking_one_person_in_at_once_count_it_once(by):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=5)
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    actor = Actor(id=people.editor, is_staff=False, roles={people.bde: Role.EDITOR})

    async def check_in():
        async with db.write_session() as session:
            if by == "name":
                return await staff_people.attendee_check_in(session, actor=actor, event_id=event_id,
                                                            registration_id=registration)
            return await staff_people.ticket_check_in(session, actor=actor, event_id=event_id,
                                                      code=code_of(event_id, registration))

    checks = await asyncio.gather(*(check_in() for _ in range(6)))
    assert sorted(checked.already for checked in checks) == [False, True, True, True, True, True]
    assert len({checked.checked_in_at for checked in checks}) == 1 and await audit_count() == 1


async def test_a_second_present_by_another_door_says_when_and_changes_nothing():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=5)
    alice = await factories.user(email="alice@etu.test", display_name="Alice Martin")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    first_door, second_door = await client_for(people.editor), await client_for(people.manager)
    first = await after_redirect(first_door, await first_door.post(url("staff_checkin_mark", event_id, registration)))
    when = await checked_in(registration)
    assert when is not None and re.search(r"Alice Martin is checked in \(\d\d:\d\d\)", first)
    second = await after_redirect(second_door, await second_door.post(url("staff_checkin_mark", event_id,
                                                                          registration)))
    assert re.search(r"Alice Martin was already checked in at \d\d:\d\d\.", second)
    assert await checked_in(registration) == when and await audit_count() == 1
    # A ticket scanned after the click says the same.
    scanned = await after_redirect(second_door, await second_door.post(url("staff_checkin_scan", event_id),
                                                                       {"code": code_of(event_id, registration)}))
    assert "Alice Martin was already checked in at" in scanned and await audit_count() == 1


async def test_nobody_is_checked_in_at_a_cancelled_event_by_ticket_or_by_name():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=5)
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    registration = await factories.registration_id(event_id=event_id, user_id=alice)
    await factories.event_transition(event_id=event_id, action="cancel", reason="Pluie")
    door = await client_for(people.editor)
    scanned = await after_redirect(door, await door.post(url("staff_checkin_scan", event_id),
                                                         {"code": code_of(event_id, registration)}))
    assert "This event was cancelled: nobody can be checked in." in scanned
    clicked = await after_redirect(door, await door.post(url("staff_checkin_mark", event_id, registration)))
    assert "This event was cancelled: nobody can be checked in." in clicked
    assert await checked_in(registration) is None and await audit_count() == 0

