"""Who may register, once the event is published (events/rules/lifecycle.py PUBLISHED_EDITABLE): its managers
see the restriction on the management page and change the invitation list, the promo years or the mode; the
students already registered keep their place (the organisers are told how many the new rule leaves out), the
pages kept in memory show the new rule at once, and a hidden members' event opened wider shows to all."""

from __future__ import annotations

from datetime import UTC, timedelta

from django.test import AsyncClient

from events.models import RegistrationStatus, utcnow
from tests import factories
from tests.rules import _pages
from tests.staff.pages import (
    PARIS,
    after_redirect,
    audit_all,
    client_for,
    event_row,
    registration_states,
    team,
    typed,
    url,
)

NOT_OPEN = "This event is not open to you: you cannot register."


def published_fields(row, **restriction) -> dict:
    """The published event's edit form as it stands, with ``restriction`` changed."""
    return {"title": row.title, "description": row.description,
            "starts_at": typed(row.starts_at.astimezone(PARIS)), "ends_at": typed(row.ends_at.astimezone(PARIS)),
            "location": row.location, "capacity": str(row.capacity), **restriction}


async def test_a_manager_sees_and_changes_the_invitation_list_of_a_published_event_and_nobody_is_dropped(session):
    people = await team()
    starts = (utcnow() + timedelta(days=20)).astimezone(PARIS).replace(hour=19, minute=0, second=0, microsecond=0)
    event_id = await factories.event(association_id=people.bde, slug="gala", title="Gala", capacity=10,
                                     starts_at=starts.astimezone(UTC), restricted_to="invited",
                                     restricted_emails=["alice@etu.test", "carol@etu.test"])
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    bob = await factories.user(email="bob@etu.test", display_name="Bob")
    await factories.registration(event_id=event_id, user_id=alice)
    bob_client = await client_for(bob)
    assert NOT_OPEN in (await bob_client.get(url("event_detail", "gala"))).text  # the page is kept in memory now

    manager = await client_for(people.manager)
    page = (await manager.get(url("staff_event", event_id))).text
    assert "Who may register" in page and "By invitation only" in page and "2 addresses on the list" in page
    form = (await manager.get(url("staff_event_edit", event_id))).text
    assert 'name="restricted_to"' in form and 'name="restricted_emails"' in form and "carol@etu.test" in form
    assert 'name="hidden_from_others"' not in form

    row = await event_row(session, event_id)
    saved = await after_redirect(manager, await manager.post(url("staff_event_edit", event_id), published_fields(
        row, restricted_to="invited", restricted_emails="bob@etu.test\ncarol@etu.test")))
    assert "Event saved." in saved
    assert "1 student already registered is outside the new rule and keeps their place" in saved
    assert "By invitation only" in saved and "2 addresses on the list" in saved
    assert (await event_row(session, event_id)).restricted_emails == ["bob@etu.test", "carol@etu.test"]
    [entry] = await audit_all(session, "event.updated")
    assert entry.changes == {"restricted_emails": [["alice@etu.test", "carol@etu.test"],
                                                   ["bob@etu.test", "carol@etu.test"]]}
    assert await registration_states(session, event_id) == {alice: RegistrationStatus.CONFIRMED}  # kept

    shown = (await bob_client.get(url("event_detail", "gala"))).text  # not the page kept from before
    assert NOT_OPEN not in shown and _pages.register_button(shown, "gala")
    await factories.registration(event_id=event_id, user_id=bob)
    assert await registration_states(session, event_id) == {alice: RegistrationStatus.CONFIRMED,
                                                            bob: RegistrationStatus.CONFIRMED}


async def test_promo_years_change_and_a_hidden_members_event_opened_to_everyone_shows_to_all(session):
    people = await team()
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=9)  # as typed in the form
    promos = await factories.event(association_id=people.bde, slug="promos", title="Soirée 2029", starts_at=starts,
                                   restricted_to="promos", restricted_promos=[2029])
    hidden = await factories.event(association_id=people.bde, slug="secret", title="Soirée secrète",
                                   starts_at=starts, restricted_to="members", hidden_from_others=True)
    manager = await client_for(people.manager)
    page = (await manager.get(url("staff_event", hidden))).text
    assert "Open to the members of BDE only." in page and "Hidden from everyone else." in page
    visitor = AsyncClient()
    assert (await visitor.get(url("event_detail", "secret"))).status_code == 404

    row = await event_row(session, promos)
    await after_redirect(manager, await manager.post(url("staff_event_edit", promos), published_fields(
        row, restricted_to="promos", restricted_promos="2029, 2030")))
    assert (await event_row(session, promos)).restricted_promos == [2029, 2030]
    assert "Open to promos 2029, 2030 only." in (await manager.get(url("staff_event", promos))).text

    row = await event_row(session, hidden)
    saved = await after_redirect(manager, await manager.post(url("staff_event_edit", hidden), published_fields(
        row, restricted_to="everyone")))
    assert "Event saved." in saved and "outside the new rule" not in saved
    row = await event_row(session, hidden)
    assert (row.restricted_to, row.hidden_from_others) == ("everyone", False)
    [*_, entry] = await audit_all(session, "event.updated")
    assert entry.changes == {"restricted_to": ["members", "everyone"], "hidden_from_others": [True, False]}
    assert (await visitor.get(url("event_detail", "secret"))).status_code == 200
    assert "Soirée secrète" in (await visitor.get("/")).text


async def test_a_published_event_cannot_be_restricted_to_an_empty_list(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    manager = await client_for(people.manager)
    row = await event_row(session, event_id)
    refused = await manager.post(url("staff_event_edit", event_id), published_fields(
        row, restricted_to="invited", restricted_emails=""))
    assert refused.status_code == 400 and "Give the addresses of the students invited." in refused.text
    assert (await event_row(session, event_id)).restricted_to == "everyone"
    assert await audit_all(session, "event.updated") == []
