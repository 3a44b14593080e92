"""The management area's associations, their members' roles and the users' staff rights."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from events.models import (
    Membership,
    Role,
    User,
)
from tests import factories
from tests.staff.pages import (
    after_redirect,
    audit_all,
    client_for,
    team,
    url,
)

# Associations, members and users.

async def test_staff_creates_an_association_and_a_taken_address_is_a_form_error(session):
    people = await team()
    staff = await client_for(people.staff)
    assert (await staff.get(url("staff_association_new"))).status_code == 200
    response = await staff.post(url("staff_association_new"), {"name": "Club Échecs", "slug": "echecs",
                                                                "description": "Le mardi."})
    assert response["Location"] == url("staff_associations")
    page = await after_redirect(staff, response)
    assert "Association saved." in page and "Club Échecs" in page
    [entry] = await audit_all(session, "association.created")
    assert entry.changes == {"slug": [None, "echecs"], "name": [None, "Club Échecs"]}

    taken = await staff.post(url("staff_association_new"), {"name": "Autre", "slug": "bde"})
    assert taken.status_code == 400 and "This address is already used by another association." in taken.text
    invalid = await staff.post(url("staff_association_new"), {"name": "", "slug": "pas un slug"})
    assert invalid.status_code == 400 and "This field is required." in invalid.text
    assert len(await audit_all(session)) == 1


async def test_manager_edits_the_association_with_an_audit_entry(session):
    people = await team()
    manager = await client_for(people.manager)
    form = await manager.get(url("staff_association_edit", people.bde))
    assert form.status_code == 200 and 'value="BDE"' in form.text
    response = await manager.post(url("staff_association_edit", people.bde),
                                  {"name": "BDE Hyperion", "slug": "bde", "description": ""})
    assert "Association saved." in await after_redirect(manager, response)
    [entry] = await audit_all(session, "association.updated")
    assert entry.actor_id == people.manager and entry.changes == {"name": ["BDE", "BDE Hyperion"]}
    taken = await manager.post(url("staff_association_edit", people.bde), {"name": "BDE", "slug": "bds"})
    assert taken.status_code == 400 and "This address is already used" in taken.text


async def test_associations_page_lists_the_users_associations_with_their_links():
    people = await team()
    page = (await (await client_for(people.manager)).get(url("staff_associations"))).text
    assert "BDE" in page and ">BDS<" not in page and url("staff_members", people.bde) in page
    assert url("staff_association_new") not in page
    staff_page = (await (await client_for(people.staff)).get(url("staff_associations"))).text
    assert ">BDS<" in staff_page and url("staff_association_new") in staff_page


async def test_manager_gives_changes_and_removes_roles_with_audit_entries(session):
    people = await team()
    newcomer = await factories.user(email="nina@etu.test", display_name="Nina")
    manager = await client_for(people.manager)
    page = await manager.get(url("staff_members", people.bde))
    assert page.status_code == 200 and "Members of BDE" in page.text and "Eddy Editor" in page.text

    async def role_of(user_id):
        return (await session.execute(select(Membership.role).where(
            Membership.user_id == user_id, Membership.association_id == people.bde))).scalar_one_or_none()

    given = await manager.post(url("staff_members", people.bde), {"email": "NINA@etu.test", "role": "editor"})
    assert given["Location"] == url("staff_members", people.bde)
    assert "Roles updated." in await after_redirect(manager, given)
    assert await role_of(newcomer) == Role.EDITOR
    assert "Nina" in (await manager.get(url("staff_members", people.bde))).text
    # Nina now enters the management area.
    assert (await (await client_for(newcomer)).get(url("staff_dashboard"))).status_code == 200

    await manager.post(url("staff_members", people.bde), {"email": "nina@etu.test", "role": "manager"})
    assert await role_of(newcomer) == Role.MANAGER
    await manager.post(url("staff_members", people.bde), {"email": "nina@etu.test", "role": "none"})
    assert await role_of(newcomer) is None
    assert (await (await client_for(newcomer)).get(url("staff_dashboard"))).status_code == 403

    entries = await audit_all(session)
    assert [(entry.action, entry.actor_id, entry.object_id, entry.association_id, entry.changes)
            for entry in entries] == [
        ("membership.role_set", people.manager, newcomer, people.bde, {"role": [None, "editor"]}),
        ("membership.role_set", people.manager, newcomer, people.bde, {"role": ["editor", "manager"]}),
        ("membership.removed", people.manager, newcomer, people.bde, {"role": ["manager", None]}),
    ]


@pytest.mark.parametrize(("data", "error"), [
    ({"email": "ghost@etu.test", "role": "editor"}, "No account with this e-mail address."),
    ({"email": "nina@etu.test", "role": "owner"}, "Select a valid choice."),
    ({"email": "", "role": "editor"}, "This field is required."),
])
async def test_invalid_member_form_is_a_form_error_and_changes_nothing(session, data, error):
    people = await team()
    await factories.user(email="nina@etu.test")
    response = await (await client_for(people.manager)).post(url("staff_members", people.bde), data)
    assert response.status_code == 400 and error in response.text
    assert len((await session.execute(select(Membership.id))).all()) == 3 and await audit_all(session) == []


async def test_staff_makes_a_user_staff_and_deactivates_another(session):
    people = await team()
    staff = await client_for(people.staff)
    page = await staff.get(url("staff_users"))
    assert page.status_code == 200 and "Stella Student" in page.text and "Eddy Editor" in page.text
    assert "Stella Student" in (await staff.get(url("staff_users"), {"q": "stella"})).text
    assert "Eddy Editor" not in (await staff.get(url("staff_users"), {"q": "stella"})).text

    response = await staff.post(url("staff_user_flags", people.student), {"is_staff": "on", "is_active": "on"})
    assert response["Location"] == url("staff_users")
    assert "Account updated." in await after_redirect(staff, response)
    flags = (await session.execute(select(User.is_staff, User.is_active).where(User.id == people.student))).one()
    assert tuple(flags) == (True, True)
    [entry] = await audit_all(session, "user.updated")
    assert entry.actor_id == people.staff and entry.object_id == people.student
    assert entry.changes == {"is_staff": [False, True]}
    # The new staff member sees the staff pages.
    assert (await (await client_for(people.student)).get(url("staff_queue"))).status_code == 200

    editor_session = await client_for(people.editor)
    await staff.post(url("staff_user_flags", people.editor), {"is_staff": ""})  # unchecked boxes: inactive
    assert not (await session.execute(select(User.is_active).where(User.id == people.editor))).scalar_one()
    assert (await editor_session.get(url("staff_dashboard")))["Location"].startswith("/account/login/")


async def test_staff_cannot_remove_their_own_staff_rights(session):
    people = await team()
    staff = await client_for(people.staff)
    response = await staff.post(url("staff_user_flags", people.staff), {"is_active": "on"})
    assert "You cannot remove your own staff rights" in await after_redirect(staff, response)
    assert (await session.execute(select(User.is_staff).where(User.id == people.staff))).scalar_one()
    response = await staff.post(url("staff_user_flags", people.staff), {"is_staff": "on"})
    assert "deactivate your own account" in await after_redirect(staff, response)
    assert (await session.execute(select(User.is_active).where(User.id == people.staff))).scalar_one()
    assert await audit_all(session) == []
