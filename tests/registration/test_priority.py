"""Priority openings: registration opens earlier for the organising association's members, some promo years
and a list of addresses, each at its own time, then for everyone; the event page, the registration service
and the staff form follow the same rule, and everyone can read who registers first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import AsyncClient
from django.urls import reverse
from sqlalchemy import select, update

from events.models import Event, RegistrationStatus, Role, User, utcnow
from events.registration import services as registration_services
from events.rules import priority
from hyperion import db
from tests import factories, support
from tests.staff.pages import event_fields, typed


@dataclass
class Student:
    promo: int | None = None
    email: str = "someone@etu.test"
    association_ids: frozenset[int] = field(default_factory=frozenset)


@dataclass
class Opening:
    association_id: int = 1
    registration_opens_at: object = None
    members_open_at: object = None
    promos_open_at: object = None
    priority_promos: list[int] | None = None
    emails_open_at: object = None
    priority_emails: list[str] | None = None


def test_a_student_gets_the_earliest_opening_of_their_groups_and_everyone_else_the_events():
    now = utcnow()
    everyone, members, promos, listed = (now + timedelta(hours=hours) for hours in (10, 4, 6, 2))
    event = Opening(registration_opens_at=everyone, members_open_at=members, promos_open_at=promos,
                    priority_promos=[2029], emails_open_at=listed, priority_emails=["vip@etu.test"])
    assert priority.opening_for(event, None) == everyone  # a visitor
    assert priority.opening_for(event, Student()) == everyone
    assert priority.opening_for(event, Student(association_ids=frozenset({1}))) == members
    assert priority.opening_for(event, Student(association_ids=frozenset({2}))) == everyone  # another asso
    assert priority.opening_for(event, Student(promo=2029)) == promos
    assert priority.opening_for(event, Student(promo=2029, association_ids=frozenset({1}))) == members
    assert priority.opening_for(event, Student(email="vip@etu.test", promo=2029)) == listed
    # Without an opening for everyone there is nothing to open earlier.
    assert priority.opening_for(Opening(members_open_at=members), Student(association_ids=frozenset({1}))) is None


async def priority_event(**fields) -> tuple[int, int]:
    """An event opening for everyone in two hours; its members register from one hour ago."""
    organiser = await factories.association(slug="bde", name="BDE")
    now = utcnow()
    values = {"registration_opens_at": now + timedelta(hours=2), "members_open_at": now - timedelta(hours=1),
              **fields}
    return await factories.event(association_id=organiser, slug="gala", capacity=10, **values), organiser


async def register(event_id: int, user_id: int):
    async with db.write_session() as session:
        return await registration_services.registration_create(session, event_id=event_id, user_id=user_id)


async def test_members_register_at_their_opening_and_the_others_are_told_when_theirs_comes():
    event_id, organiser = await priority_event()
    member = await factories.user(email="member@etu.test")
    await factories.member(association_id=organiser, user_id=member, role=Role.MEMBER)
    other = await factories.user(email="other@etu.test")
    assert (await register(event_id, member)).status == RegistrationStatus.CONFIRMED
    with pytest.raises(registration_services.RegistrationNotYetOpen) as refused:
        await register(event_id, other)
    assert abs(refused.value.opens_at - (utcnow() + timedelta(hours=2))) < timedelta(minutes=1)


async def test_a_promo_and_a_list_open_at_their_own_times():
    now = utcnow()
    event_id, _organiser = await priority_event(
        members_open_at=None, promos_open_at=now + timedelta(hours=1), priority_promos=[2029],
        emails_open_at=now - timedelta(minutes=5), priority_emails=["team@etu.test"])
    first_year = await factories.user(email="first@etu.test", promo=2029)
    team = await factories.user(email="team@etu.test", promo=2027)
    with pytest.raises(registration_services.RegistrationNotYetOpen) as refused:  # not yet: in an hour
        await register(event_id, first_year)
    assert abs(refused.value.opens_at - (now + timedelta(hours=1))) < timedelta(minutes=1)
    assert (await register(event_id, team)).status == RegistrationStatus.CONFIRMED
    async with db.write_session() as write, write.begin():  # raw: the promo's hour comes (time passing)
        await write.execute(update(Event).where(Event.id == event_id).values(
            promos_open_at=utcnow() - timedelta(seconds=1)))
    assert (await register(event_id, first_year)).status == RegistrationStatus.CONFIRMED


@pytest.mark.usefixtures("cache_on")
async def test_the_page_tells_everyone_who_registers_first_and_opens_the_button_for_the_member():
    event_id, organiser = await priority_event()
    member = await factories.user(email="member@etu.test")
    await factories.member(association_id=organiser, user_id=member, role=Role.MEMBER)
    other = await factories.user(email="other@etu.test")
    page = (await (await support.client_as(other)).get("/events/gala/")).content.decode()
    assert "Priority openings: members of BDE from" in page and "then everyone." in page
    assert "Registration opens on" in page and " disabled>Register<" in page  # counting down to everyone's
    member_client = await support.client_as(member)
    page = (await member_client.get("/events/gala/")).content.decode()
    assert "Priority opening: as a member of BDE, you may register from" in page
    assert ">Register<" in page and " disabled>Register<" not in page
    response = await member_client.post("/events/gala/register/")
    assert "You are registered" in (await member_client.get(response["Location"])).content.decode()
    # A visitor's (stored) page names the groups too, and offers only the log-in.
    visitor = AsyncClient()
    visitor.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Priority openings: members of BDE" in (await visitor.get("/events/gala/")).content.decode()


async def test_staff_set_priority_openings_and_the_form_refuses_what_makes_no_sense(session):
    organiser = await factories.association(slug="bde", name="BDE")
    staff = await factories.user(email="staff@etu.test", is_staff=True)
    client = await support.client_as(staff)
    starts = utcnow() + timedelta(days=10)

    base = event_fields(organiser, starts=starts, title="Gala", category="party", location="", description="",
                        capacity="100", registration_opens_at=typed(starts - timedelta(days=5)))
    wrong = await client.post(reverse("staff_event_new"), {
        **base, "members_open_at": typed(starts - timedelta(days=4)), "priority_promos": "2029, deux",
        "priority_emails": "ok@etu.test, not-an-address", "emails_open_at": typed(starts - timedelta(days=6))})
    assert wrong.status_code == 400
    text = wrong.content.decode()
    assert "A priority opening comes before registration opens for everyone." in text
    assert "Type promo years as numbers separated by commas" in text
    assert "Not an e-mail address: not-an-address" in text
    assert (await session.execute(select(Event.id))).first() is None
    lottery = await client.post(reverse("staff_event_new"), {
        **base, "lottery_minutes": "10", "members_open_at": typed(starts - timedelta(days=6))})
    assert "An event that opens by lottery has no priority openings" in lottery.content.decode()
    fine = await client.post(reverse("staff_event_new"), {
        **base, "members_open_at": typed(starts - timedelta(days=6)), "priority_promos": "2030 2029",
        "promos_open_at": typed(starts - timedelta(days=6)), "priority_emails": "Team@Etu.test\nvip@etu.test",
        "emails_open_at": typed(starts - timedelta(days=7))})
    assert fine.status_code == 302
    event = (await session.execute(select(Event))).scalar_one()
    assert event.priority_promos == [2029, 2030] and event.priority_emails == ["team@etu.test", "vip@etu.test"]
    edit = (await client.get(reverse("staff_event_edit", args=[event.id]))).content.decode()
    assert "2029, 2030" in edit and "team@etu.test\nvip@etu.test" in edit


async def test_the_session_knows_the_students_promo_and_memberships():
    organiser = await factories.association(slug="bde", name="BDE")
    other = await factories.association(slug="ski", name="Ski")
    student = await factories.user(email="s@etu.test", promo=2028)
    for association_id in (organiser, other):
        await factories.member(association_id=association_id, user_id=student, role=Role.MEMBER)
    from events.accounts import auth
    async with db.write_session() as session:
        token = await auth.session_create(session, user_id=student)
    async with db.read_connection() as connection:
        user = await auth.user_for_token(connection, token=token)
    assert (user.promo, user.association_ids) == (2028, frozenset({organiser, other}))
    async with db.read_session() as session:
        assert (await session.execute(select(User.promo).where(User.id == student))).scalar_one() == 2028
