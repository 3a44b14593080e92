"""Restricted events (events/rules/restrictions.py): open to the association's members, to promo years or to an
invitation list; the others read why they cannot register and are refused by the service as by the page; a
members' event may be hidden from everyone else (lists, calendar, feeds, its page); organisers still add anyone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import AsyncClient
from sqlalchemy import select

from events.accounts import services as account_services
from events.models import Registration, RegistrationAnswers, RegistrationStatus, Role, utcnow
from events.registration import lottery
from events.registration import services as registration_services
from events.rules.permissions import Actor
from events.staff import people as staff_people
from events.staff import questions as staff_questions
from events.views import registration as registration_views
from hyperion import db
from tests import factories, support
from tests.rules import _pages
from tests.staff.pages import client_for, event_fields, team, url

EN = {"Accept-Language": "en"}


async def registered(event_id: int) -> dict[int, RegistrationStatus]:
    async with db.read_session() as session:
        rows = await session.execute(select(Registration.user_id, Registration.status)
                                     .where(Registration.event_id == event_id))
        return {row.user_id: row.status for row in rows}


async def logged_in(user_id: int) -> AsyncClient:
    client = AsyncClient()
    await support.login(client, user_id)
    return client


async def club():
    association_id = await factories.association(slug="club", name="Club Théâtre")
    member = await factories.user(email="member@etu.test", display_name="Member", promo=2029)
    await factories.member(association_id=association_id, user_id=member, role=Role.MEMBER)
    outsider = await factories.user(email="outsider@etu.test", display_name="Outsider", promo=2028)
    return association_id, member, outsider


@pytest.mark.parametrize(("restriction", "label"), [
    ({"restricted_to": "members"}, "Open to the members of Club Théâtre only."),
    ({"restricted_to": "promos", "restricted_promos": [2029, 2030]}, "Open to promos 2029, 2030 only."),
    ({"restricted_to": "invited", "restricted_emails": ["member@etu.test"]}, "By invitation only"),
], ids=["members", "promos", "invited"])
async def test_the_page_and_the_service_admit_exactly_the_same_students(restriction, label):
    association_id, member, outsider = await club()
    event_id = await factories.event(association_id=association_id, slug="gala", **restriction)
    outside = (await (await logged_in(outsider)).get("/events/gala/", headers=EN)).text
    assert label in outside and "This event is not open to you: you cannot register." in outside
    assert not _pages.register_button(outside, "gala")
    refused = await (await logged_in(outsider)).post("/events/gala/register/", headers=EN)
    assert refused.status_code == 302
    assert label in (await (await logged_in(outsider)).get("/events/gala/", headers=EN)).text
    inside = (await (await logged_in(member)).get("/events/gala/", headers=EN)).text
    assert label in inside and _pages.register_button(inside, "gala")
    assert (await (await logged_in(member)).post("/events/gala/register/", headers=EN)).status_code == 302
    assert await registered(event_id) == {member: RegistrationStatus.CONFIRMED}
    # The service says the same to a caller that skips the page.
    async with db.write_session() as session:
        with pytest.raises(registration_services.RegistrationRestricted):
            await registration_services.registration_create(session, event_id=event_id, user_id=outsider)
    assert await registered(event_id) == {member: RegistrationStatus.CONFIRMED}


async def test_an_invitation_list_matches_the_address_as_typed_in_any_case():
    association_id, _member, outsider = await club()
    event_id = await factories.event(association_id=association_id, slug="gala", restricted_to="invited",
                                     restricted_emails=["outsider@etu.test"])
    async with db.write_session() as session:
        outcome = await registration_services.registration_create(session, event_id=event_id, user_id=outsider)
    assert outcome.status == RegistrationStatus.CONFIRMED


async def test_a_hidden_members_event_is_on_no_list_calendar_or_feed_and_its_page_is_a_404_for_others():
    association_id, member, outsider = await club()
    starts = (utcnow() + timedelta(days=5)).replace(hour=20, minute=0, second=0, microsecond=0)
    await factories.event(association_id=association_id, slug="secret", title="Soirée secrète", starts_at=starts,
                          restricted_to="members", hidden_from_others=True)
    await factories.event(association_id=association_id, slug="public", title="Soirée publique", starts_at=starts)
    staff = await factories.user(email="staff@etu.test", display_name="Staff", is_staff=True)
    pages = ["/", f"/calendar/?month={starts:%Y-%m}", "/associations/club/", "/associations/"]
    for who, client in (("visitor", AsyncClient()), ("outsider", await logged_in(outsider))):
        for page in pages:
            text = (await client.get(page, headers=EN)).text
            assert "Soirée secrète" not in text and "secret" not in _pages.slugs_listed(text), (who, page)
            assert "Soirée publique" in text, (who, page)  # the same evening, open to all, is there
        assert (await client.get("/events/secret/")).status_code == 404, who
        assert (await client.get("/events/secret.ics")).status_code == 404, who
        assert (await client.get("/events/secret/seats/")).status_code == 404, who  # nor its live counter
    for feed in ("/feeds/events.ics", "/feeds/associations/club.ics"):
        body = (await AsyncClient().get(feed)).content.decode()
        assert "Soirée publique" in body and "Soirée secrète" not in body, feed
    directory = (await AsyncClient().get("/associations/", headers=EN)).text
    assert "Soirée publique" in directory
    member_client = await logged_in(member)
    assert "Soirée secrète" in (await member_client.get("/associations/club/", headers=EN)).text
    assert (await member_client.get("/events/secret/")).status_code == 200
    assert (await (await logged_in(staff)).get("/events/secret/")).status_code == 200


async def test_organisers_may_add_anyone_by_hand():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", restricted_to="invited",
                                     restricted_emails=["someone@etu.test"])
    outsider = await factories.user(email="outsider@etu.test", display_name="Outsider")
    manager = Actor(id=people.manager, is_staff=False, roles={people.bde: Role.MANAGER})
    async with db.write_session() as session:
        outcome = await staff_people.attendee_add(session, actor=manager, event_id=event_id, email="outsider@etu.test")
    assert outcome.status == RegistrationStatus.CONFIRMED and outsider in await registered(event_id)


async def test_a_restricted_lottery_takes_the_locked_way_and_refuses_the_others():
    event_id = await factories.lottery_event(slug="tombola")
    async with db.write_session() as session, session.begin():  # raw: a restriction set on the lottery factory's event
        from events.models import Event

        await session.execute(Event.__table__.update().where(Event.id == event_id)
                              .values(restricted_to="promos", restricted_promos=[2029]))
    await lottery.draw_due()
    assert registration_views.lottery_opening("tombola") is None
    admitted = await factories.user(email="a@etu.test", display_name="A", promo=2029)
    other = await factories.user(email="b@etu.test", display_name="B", promo=2027)
    for user_id in (admitted, other):
        await (await logged_in(user_id)).post("/events/tombola/register/", headers=EN)
    assert await registered(event_id) == {admitted: RegistrationStatus.ENTERED}


@pytest.mark.parametrize(("fields", "field", "error"), [
    ({"restricted_to": "promos", "restricted_promos": ""}, "restricted_promos", "Give the promo years."),
    ({"restricted_to": "promos", "restricted_promos": "deux mille"}, "restricted_promos", "Type promo years"),
    ({"restricted_to": "invited", "restricted_emails": ""}, "restricted_emails", "Give the addresses"),
    ({"restricted_to": "invited", "restricted_emails": "pas-une-adresse"}, "restricted_emails",
     "Not an e-mail address"),
    ({"restricted_to": "everyone", "hidden_from_others": "on"}, "hidden_from_others",
     "Only an event open to the members can be hidden"),
    ({"restricted_to": "friends"}, "restricted_to", "Select a valid choice."),
], ids=["promos-missing", "promos-not-numbers", "list-missing", "list-not-addresses", "hidden-for-all", "unknown"])
async def test_the_event_form_refuses_incomplete_restrictions_and_creates_nothing(fields, field, error):
    people = await team()
    editor = await client_for(people.editor)
    response = await editor.post(url("staff_event_new"), event_fields(people.bde, **fields))
    assert response.status_code == 400 and error in response.text, field
    async with db.read_session() as session:
        from events.models import Event

        assert (await session.execute(select(Event.id))).first() is None


async def test_an_editor_restricts_a_new_event_to_the_members_and_hides_it():
    people = await team()
    editor = await client_for(people.editor)
    response = await editor.post(url("staff_event_new"), event_fields(
        people.bde, restricted_to="members", hidden_from_others="on", restricted_promos="2029"))
    assert response.status_code == 302
    async with db.read_session() as session:
        from events.models import Event

        row = (await session.execute(select(Event.restricted_to, Event.restricted_promos,
                                            Event.hidden_from_others))).one()
    assert tuple(row) == ("members", None, True)  # the promos typed for another choice are not kept


async def _asking(association_id: int, slug: str, **restriction) -> tuple[int, str]:
    """An event of ``association_id`` asking one question (restricted as given); the question's field name."""
    manager_id = await factories.user(email=f"manager-{slug}@etu.test", display_name="Manager")
    await factories.member(association_id=association_id, user_id=manager_id, role=Role.MANAGER)
    event_id = await factories.event(association_id=association_id, slug=slug, **restriction)
    async with db.write_session() as session:
        question = await staff_questions.question_add(
            session, actor=Actor(id=manager_id, is_staff=False, roles={association_id: Role.MANAGER}),
            event_id=event_id, kind="text", label="Dietary needs")
    return event_id, f"answer_{question.id}"


async def answer_rows() -> list[int]:
    async with db.read_session() as session:
        return list((await session.execute(select(RegistrationAnswers.user_id))).scalars())


async def test_an_outsider_of_a_hidden_event_gets_a_404_and_nothing_is_written():
    """Registering, changing answers, leaving: for an outsider a hidden event is an unknown address."""
    association_id, member, outsider = await club()
    event_id, field = await _asking(association_id, "secret", restricted_to="members", hidden_from_others=True)
    client = await logged_in(outsider)
    answers = {"questions": "1", field: "Végétarien"}
    for path in ("/events/secret/register/", "/events/secret/answers/", "/events/secret/leave/",
                 "/events/nowhere/register/"):
        assert (await client.post(path, answers, headers=EN)).status_code == 404, path
    assert (await client.post("/events/secret/register/", {}, headers=EN)).status_code == 404  # no answers
    assert await answer_rows() == [] and await registered(event_id) == {}
    # Its members register with their answers as before.
    assert (await (await logged_in(member)).post("/events/secret/register/", answers)).status_code == 302
    assert await answer_rows() == [member] and await registered(event_id) == {member: RegistrationStatus.CONFIRMED}


async def test_a_student_an_event_does_not_admit_is_refused_before_the_answers_are_written():
    association_id, _member, outsider = await club()
    event_id, field = await _asking(association_id, "gala", restricted_to="promos", restricted_promos=[2029])
    client = await logged_in(outsider)
    refused = await client.post("/events/gala/register/", {"questions": "1", field: "Halal"}, headers=EN)
    assert refused.status_code == 302
    assert "This event is not open to you" in (await client.get("/events/gala/", headers=EN)).text
    assert await answer_rows() == [] and await registered(event_id) == {}


@pytest.mark.usefixtures("cache_on")
async def test_a_hidden_members_event_is_on_its_members_home_page_calendar_and_calendar_file_only():
    """The home page and the calendar are fragments shared by all who ask the same: a member's is keyed by the
    associations that hide events from others, so nobody else ever gets it (the page store is on here)."""
    association_id, member, outsider = await club()
    other_club = await factories.association(slug="autre", name="Autre club")
    other_member = await factories.user(email="other@etu.test", display_name="Other")
    await factories.member(association_id=other_club, user_id=other_member, role=Role.EDITOR)
    starts = (utcnow() + timedelta(days=5)).replace(hour=20, minute=0, second=0, microsecond=0)
    await factories.event(association_id=association_id, slug="secret", title="Soirée secrète", starts_at=starts,
                          restricted_to="members", hidden_from_others=True)
    await factories.event(association_id=other_club, slug="autre-secret", title="Autre secret", starts_at=starts,
                          restricted_to="members", hidden_from_others=True)
    week = f"{starts.isocalendar().year}-W{starts.isocalendar().week:02d}"
    pages = ["/", f"/calendar/?month={starts:%Y-%m}", f"/calendar/week/?week={week}"]
    member_client = await logged_in(member)
    for page in pages:  # the member first: the fragments with the secret are built and kept
        text = (await member_client.get(page, headers=EN)).text
        assert "Soirée secrète" in text and "Autre secret" not in text, page
    assert "secret" in _pages.slugs_listed((await member_client.get("/", headers=EN)).text)
    for who, client in (("visitor", AsyncClient()), ("outsider", await logged_in(outsider)),
                        ("the other club's member", await logged_in(other_member))):
        for page in pages:
            text = (await client.get(page, headers=EN)).text
            assert "Soirée secrète" not in text, (who, page)
        assert (await client.get("/events/secret.ics")).status_code == 404, who
    assert "Autre secret" in (await (await logged_in(other_member)).get("/", headers=EN)).text
    ics = await member_client.get("/events/secret.ics")
    assert ics.status_code == 200 and "Soirée secrète" in ics.content.decode()
    assert ics["Cache-Control"].startswith("private")  # no shared cache keeps it for others
    # Her personal feed carries it as a followed association's event, then as her registration; an outsider who
    # follows the club does not get it.
    tokens = {}
    for user_id in (member, outsider):
        await (await logged_in(user_id)).post("/associations/club/follow/", {"follow": "yes"})
        async with db.write_session() as session:
            tokens[user_id] = (await account_services.feed_token_regenerate(session, user_id=user_id)).token
    feed = f"/feeds/me/{tokens[member]}.ics"
    assert "Soirée secrète" in (await AsyncClient().get(feed)).content.decode()
    assert "Soirée secrète" not in (await AsyncClient().get(f"/feeds/me/{tokens[outsider]}.ics")).content.decode()
    await member_client.post("/events/secret/register/")
    assert "Soirée secrète" in (await AsyncClient().get(feed)).content.decode()
    assert await registered(await _event_id("secret")) == {member: RegistrationStatus.CONFIRMED}


async def _event_id(slug: str) -> int:
    async with db.read_session() as session:
        from events.models import Event

        return (await session.execute(select(Event.id).where(Event.slug == slug))).scalar_one()


async def test_lists_calendar_and_event_page_mark_an_event_not_open_to_everyone():
    association_id, member, _outsider = await club()
    starts = (utcnow() + timedelta(days=5)).replace(hour=20, minute=0, second=0, microsecond=0)
    for slug, restriction in (("membres", {"restricted_to": "members"}),
                              ("promo", {"restricted_to": "promos", "restricted_promos": [2027]}),
                              ("promos", {"restricted_to": "promos", "restricted_promos": [2027, 2028]}),
                              ("liste", {"restricted_to": "invited", "restricted_emails": ["a@etu.test"]}),
                              ("ouverte", {})):
        await factories.event(association_id=association_id, slug=slug, title=f"Soirée {slug}", starts_at=starts,
                              **restriction)
    badges = ["Members only", "Promo 2027 only", "Promos 2027, 2028 only", "Invitation only"]
    for client in (AsyncClient(), await logged_in(member)):
        for page in ("/", f"/calendar/?month={starts:%Y-%m}", "/associations/club/"):
            text = (await client.get(page, headers=EN)).text
            assert all(f'<span class="badge badge-restricted">{badge}</span>' in text for badge in badges), page
            assert text.count("badge-restricted") == len(badges), page  # the open event has none
    french = (await AsyncClient().get("/", headers={"Accept-Language": "fr"})).text
    for badge in ("Réservé aux membres", "Promo 2027 uniquement", "Promos 2027, 2028 uniquement", "Sur invitation"):
        assert badge in french
    assert "Promo 2027 only</span></h1>" in (await AsyncClient().get("/events/promo/", headers=EN)).text
    assert "badge-restricted" not in (await AsyncClient().get("/events/ouverte/", headers=EN)).text
