"""The management area's pages and forms for events: navigation, create, edit, series, lifecycle,
delete, the event's page, and what changes show to registered students."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import AsyncClient
from sqlalchemy import func, select, update

from events.models import (
    Association,
    Event,
    EventStatus,
    OutboxMessage,
    RegistrationStatus,
    utcnow,
)
from hyperion import db
from tests import factories, support
from tests.staff.pages import (
    PARIS,
    after_redirect,
    audit_all,
    client_for,
    event_fields,
    event_row,
    events_all,
    paris,
    registration_states,
    students,
    team,
    typed,
    url,
)

# Navigation and overview.

async def test_nav_shows_manage_with_the_queue_count_for_staff_manage_for_editors_nothing_for_students():
    people = await team()
    for slug in ("a", "b"):
        await factories.event(association_id=people.bde, slug=slug, status=EventStatus.SUBMITTED,
                                   submitted_at=utcnow())
    await factories.event(association_id=people.bde, slug="draft", status=EventStatus.DRAFT)

    staff_home = (await (await client_for(people.staff)).get("/")).text
    assert re.search(r'href="/manage/"[^>]*>Manage <span class="badge"[^>]*>2</span>', staff_home)
    editor_home = (await (await client_for(people.editor)).get("/")).text
    assert 'href="/manage/"' in editor_home and 'class="badge"' not in editor_home
    student_home = (await (await client_for(people.student)).get("/")).text
    assert "/manage/" not in student_home and "Manage" not in student_home
    assert "/manage/" not in (await (await client_for()).get("/")).text


async def test_dashboard_shows_the_queue_to_staff_and_their_associations_to_editors():
    people = await team()
    await factories.event(association_id=people.bds, slug="tournoi", title="Tournoi de foot",
                               status=EventStatus.SUBMITTED, submitted_at=utcnow())
    staff_page = await (await client_for(people.staff)).get(url("staff_dashboard"))
    assert staff_page.status_code == 200
    assert "1 event waits for approval." in staff_page.text and "Tournoi de foot" in staff_page.text
    assert 'href="/manage/queue/">Approval queue <span class="badge">1</span>' in staff_page.text

    editor_page = await (await client_for(people.editor)).get(url("staff_dashboard"))
    assert editor_page.status_code == 200
    assert "BDE" in editor_page.text and "BDS" not in editor_page.text
    assert "Tournoi de foot" not in editor_page.text and "/manage/queue/" not in editor_page.text
    assert "/manage/users/" not in editor_page.text and "/manage/audit/" not in editor_page.text


async def test_events_list_filters_by_status_and_title_and_shows_only_the_editors_associations():
    people = await team()
    await factories.event(association_id=people.bde, slug="gala", title="Gala d'hiver")
    await factories.event(association_id=people.bde, slug="quiz", title="Quiz musical", status=EventStatus.DRAFT)
    await factories.event(association_id=people.bds, slug="secret", title="Brouillon BDS",
                               status=EventStatus.DRAFT)
    editor = await client_for(people.editor)
    everything = await editor.get(url("staff_events"))
    assert everything.status_code == 200
    assert "Gala d&#39;hiver" in everything.text and "Quiz musical" in everything.text
    assert "Brouillon BDS" not in everything.text
    drafts = (await editor.get(url("staff_events"), {"status": "draft"})).text
    assert "Quiz musical" in drafts and "Gala" not in drafts
    searched = (await editor.get(url("staff_events"), {"q": "GALA"})).text
    assert "Gala d&#39;hiver" in searched and "Quiz musical" not in searched
    # Naming the other association in the URL does not reveal its events.
    forced = (await editor.get(url("staff_events"), {"association": str(people.bds)})).text
    assert "Brouillon BDS" not in forced
    staff_view = (await (await client_for(people.staff)).get(url("staff_events"), {"association": people.bds})).text
    assert "Brouillon BDS" in staff_view and "Quiz musical" not in staff_view


# Creating and editing events.

async def test_new_event_form_renders_with_only_the_editors_associations():
    people = await team()
    page = await (await client_for(people.editor)).get(url("staff_event_new"))
    assert page.status_code == 200
    assert 'type="datetime-local"' in page.text and "Times are in Paris time." in page.text
    assert f'<option value="{people.bde}">BDE</option>' in page.text and ">BDS<" not in page.text


async def test_new_event_creates_a_draft_in_paris_time_with_a_message_and_an_audit_entry(session):
    people = await team()
    editor = await client_for(people.editor)
    response = await editor.post(url("staff_event_new"), event_fields(people.bde))
    [event] = await events_all(session)
    assert response["Location"] == url("staff_event", event.id)
    page = await after_redirect(editor, response)
    assert "Draft created. Submit it for approval when it is ready." in page
    assert "Soirée jeux" in page and "Draft" in page
    assert event.status == EventStatus.DRAFT and event.association_id == people.bde
    assert event.starts_at == datetime(2030, 5, 1, 17, 0, tzinfo=UTC)  # 19:00 in Paris, summer time
    assert event.ends_at == datetime(2030, 5, 1, 20, 0, tzinfo=UTC)
    assert event.capacity == 30 and event.location == "Le Foyer" and event.created_by_id == people.editor
    assert event.slug == "soiree-jeux-2030-05-01"
    [entry] = await audit_all(session)
    assert (entry.action, entry.actor_id, entry.object_type, entry.object_id) == (
        "event.created", people.editor, "event", event.id)
    assert entry.changes["title"] == [None, "Soirée jeux"] and entry.changes["capacity"] == [None, 30]


INVALID_EVENT_INPUT = [
    pytest.param({"ends_at": "2030-05-01T18:00"}, "The event cannot end before it starts.", id="end-before-start"),
    pytest.param({"title": ""}, "This field is required.", id="missing-title"),
    pytest.param({"title": "   "}, "This field is required.", id="blank-title"),
    pytest.param({"capacity": "-1"}, "Ensure this value is greater than or equal to 0.", id="negative-capacity"),
    pytest.param({"capacity": "beaucoup"}, "Enter a whole number.", id="capacity-not-a-number"),
    pytest.param({"starts_at": "1900-05-01T19:00", "ends_at": "1900-05-01T22:00"},
                 "Choose a date between 2000 and 2100.", id="year-1900"),
    pytest.param({"starts_at": "2027-03-28T02:30", "ends_at": "2027-03-28T05:00"},
                 "Europe/Paris; it may be ambiguous or it may not exist.", id="dst-gap"),
    pytest.param({"starts_at": "2027-10-31T02:30", "ends_at": "2027-10-31T05:00"},
                 "Europe/Paris; it may be ambiguous or it may not exist.", id="dst-ambiguous"),
    pytest.param({"registration_opens_at": "1900-01-01T10:00"}, "Choose a date between 2000 and 2100.",
                 id="registration-opens-in-1900"),
    pytest.param({"starts_at": "2030-13-45T19:00"}, "Enter a valid date/time.", id="impossible-date"),
    pytest.param({"registration_opens_at": "2030-04-20T12:00", "registration_closes_at": "2030-04-10T12:00"},
                 "Registration cannot close before it opens.", id="registration-closes-before-it-opens"),
    pytest.param({"category": "rave"}, "Select a valid choice.", id="unknown-category"),
    pytest.param({"title": "Soirée\x00"}, "Null characters are not allowed.", id="nul-in-title"),
]


@pytest.mark.parametrize(("overrides", "error"), INVALID_EVENT_INPUT)
async def test_invalid_new_event_shows_the_error_with_400_and_saves_nothing(session, overrides, error):
    people = await team()
    response = await (await client_for(people.editor)).post(url("staff_event_new"),
                                                            event_fields(people.bde, **overrides))
    assert response.status_code == 400
    assert error in response.text
    assert 'class="errorlist"' in response.text or 'class="form-errors"' in response.text
    assert await events_all(session) == [] and await audit_all(session) == []


async def test_creating_an_event_for_another_association_is_refused_and_saves_nothing(session):
    people = await team()
    response = await (await client_for(people.editor)).post(url("staff_event_new"), event_fields(people.bds))
    assert response.status_code == 400 and "Select a valid choice." in response.text
    assert await events_all(session) == [] and await audit_all(session) == []


async def test_editor_edits_a_draft_every_field_and_the_audit_keeps_before_and_after(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="quiz", title="Quiz",
                                          status=EventStatus.DRAFT, capacity=20, location="Salle 1",
                                          starts_at=paris(2030, 6, 3, 20).astimezone(UTC))
    editor = await client_for(people.editor)
    form = await editor.get(url("staff_event_edit", event_id))
    assert form.status_code == 200
    assert 'value="2030-06-03T20:00"' in form.text and 'value="Salle 1"' in form.text  # Paris time, prefilled
    response = await editor.post(url("staff_event_edit", event_id), event_fields(
        people.bde, title="Quiz musical", location="Amphi B", capacity="40", starts=paris(2030, 6, 4, 20)))
    assert response["Location"] == url("staff_event", event_id)
    assert "Event saved." in await after_redirect(editor, response)
    event = await event_row(session, event_id)
    assert (event.title, event.location, event.capacity, event.status) == (
        "Quiz musical", "Amphi B", 40, EventStatus.DRAFT)
    assert event.starts_at == datetime(2030, 6, 4, 18, tzinfo=UTC)
    [entry] = await audit_all(session, "event.updated")
    assert entry.actor_id == people.editor and entry.object_id == event_id
    assert entry.changes["title"] == ["Quiz", "Quiz musical"]
    assert entry.changes["location"] == ["Salle 1", "Amphi B"]
    assert entry.changes["capacity"] == [20, 40]
    assert "starts_at" in entry.changes and "association_id" not in entry.changes


HIDDEN_CONTROL = "This text contains invisible control characters (such as right-to-left marks): remove them."


@pytest.mark.parametrize("field, value", [
    ("title", "Soirée \u202eeévirp"), ("title", "Soirée\u2067 jeux"), ("location", "Le Foyer\u200e"),
    ("location", "Le\x1bFoyer"), ("description", "Venez\u202e nombreux."), ("description", "Venez\x00 nombreux."),
])
async def test_a_title_place_or_description_with_bidi_or_control_characters_is_refused(session, field, value):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="quiz", title="Quiz",
                                          status=EventStatus.DRAFT, location="Salle 1")
    before = await event_row(session, event_id)
    editor = await client_for(people.editor)
    edited = await editor.post(url("staff_event_edit", event_id), event_fields(people.bde, **{field: value}))
    assert edited.status_code == 400 and HIDDEN_CONTROL in edited.text
    created = await editor.post(url("staff_event_new"), event_fields(people.bde, **{field: value}))
    assert created.status_code == 400 and HIDDEN_CONTROL in created.text
    assert await event_row(session, event_id) == before and len(await events_all(session)) == 1
    assert await audit_all(session) == []


async def test_a_description_keeps_its_line_breaks():
    people = await team()
    editor = await client_for(people.editor)
    created = await editor.post(url("staff_event_new"), event_fields(people.bde, description="Venez\r\n\tnombreux."))
    assert created.status_code == 302


@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_a_reason_with_bidi_or_control_characters_is_refused_but_line_breaks_are_kept(session, action):
    people = await team()
    status = EventStatus.SUBMITTED if action == "decline" else EventStatus.APPROVED
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="gala", title="Gala", status=status,
                                          submitted_at=utcnow())
    staff = await client_for(people.staff)
    for hostile in ("Pas de salle \u202e.", "Pas\u2066 de salle", "Pas\x08 de salle"):
        refused = await staff.post(url(f"staff_event_{action}", event_id), {"reason": hostile})
        assert refused.status_code == 400 and HIDDEN_CONTROL in refused.text
        assert (await event_row(session, event_id)).status == status
    assert await audit_all(session) == []
    accepted = await staff.post(url(f"staff_event_{action}", event_id), {"reason": "Pas de salle.\r\nDésolés."})
    assert accepted.status_code == 302
    assert (await event_row(session, event_id)).status != status


async def test_an_association_name_with_bidi_or_control_characters_is_refused(session):
    people = await team()
    staff = await client_for(people.staff)
    for name in ("BDE \u202eesrever", "BDE\u200f", "BDE\x7f"):
        refused = await staff.post(url("staff_association_edit", people.bde),
                                   {"name": name, "slug": "bde", "description": ""})
        assert refused.status_code == 400 and HIDDEN_CONTROL in refused.text
        created = await staff.post(url("staff_association_new"), {"name": name, "slug": "new-one", "description": ""})
        assert created.status_code == 400 and HIDDEN_CONTROL in created.text
    names = (await session.execute(select(Association.name).order_by(Association.name))).scalars().all()
    assert names == ["BDE", "BDS"]


async def test_saving_an_unchanged_form_says_nothing_changed_and_writes_no_entry(session):
    people = await team()
    editor = await client_for(people.editor)
    created = await editor.post(url("staff_event_new"), event_fields(people.bde))
    [event] = await events_all(session)
    assert created.status_code == 302
    response = await editor.post(url("staff_event_edit", event.id), event_fields(people.bde))
    assert "Nothing changed." in await after_redirect(editor, response)
    assert [entry.action for entry in await audit_all(session)] == ["event.created"]


async def test_invalid_edit_shows_errors_with_400_and_keeps_the_event(session):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="quiz", title="Quiz",
                                          status=EventStatus.DRAFT)
    before = await event_row(session, event_id)
    editor = await client_for(people.editor)
    for overrides, error in [({"ends_at": "2030-05-01T18:00"}, "The event cannot end before it starts."),
                             ({"title": ""}, "This field is required."),
                             ({"starts_at": "2027-03-28T02:30"}, "it may not exist")]:
        response = await editor.post(url("staff_event_edit", event_id), event_fields(people.bde, **overrides))
        assert response.status_code == 400 and error in response.text
    assert await event_row(session, event_id) == before
    assert await audit_all(session) == []


# The lifecycle.

async def test_submit_then_staff_approves_from_the_queue_and_the_event_is_published(session):
    people = await team()
    editor, staff = await client_for(people.editor), await client_for(people.staff)
    await editor.post(url("staff_event_new"), event_fields(people.bde, starts=utcnow() + timedelta(days=10)))
    [event] = await events_all(session)
    assert (await AsyncClient().get(url("event_detail", event.slug))).status_code == 404

    submitted = await editor.post(url("staff_event_submit", event.id))
    assert submitted["Location"] == url("staff_event", event.id)
    assert "Submitted for approval: the staff will review it." in await after_redirect(editor, submitted)
    row = await event_row(session, event.id)
    assert row.status == EventStatus.SUBMITTED and row.submitted_at is not None

    queue = await staff.get(url("staff_queue"))
    assert queue.status_code == 200 and "Soirée jeux" in queue.text
    approved = await staff.post(url("staff_event_approve", event.id), {"back": "queue"})
    assert approved["Location"] == url("staff_queue")
    landing = await after_redirect(staff, approved)
    assert "Approved: the event is published." in landing and "Nothing waits for approval." in landing
    assert (await event_row(session, event.id)).status == EventStatus.APPROVED

    public = await (await client_for()).get(url("event_detail", event.slug))
    assert public.status_code == 200 and "Soirée jeux" in public.text
    assert "Soirée jeux" in (await AsyncClient().get("/")).text
    entries = await audit_all(session)
    assert [(entry.action, entry.actor_id) for entry in entries] == [
        ("event.created", people.editor), ("event.submitted", people.editor), ("event.approved", people.staff)]
    assert entries[1].changes == {"status": ["draft", "submitted"]}
    assert entries[2].changes == {"status": ["submitted", "approved"]}


async def test_the_queue_serves_the_oldest_submission_first():
    people = await team()
    now = utcnow()
    for slug, title, age in [("b", "Second venu", 2), ("c", "Dernier venu", 1), ("a", "Premier venu", 3)]:
        await factories.event(association_id=people.bde, slug=slug, title=title, status=EventStatus.SUBMITTED,
                                   submitted_at=now - timedelta(hours=age))
    page = (await (await client_for(people.staff)).get(url("staff_queue"))).text
    positions = [page.index(title) for title in ("Premier venu", "Second venu", "Dernier venu")]
    assert positions == sorted(positions)
    assert re.search(r">Approval queue <span class=\"badge\">3</span>", page)


ILLEGAL_TRANSITIONS = [
    pytest.param(EventStatus.DRAFT, "staff_event_approve", {}, "staff", id="approve-a-never-submitted-draft"),
    pytest.param(EventStatus.DECLINED, "staff_event_approve", {}, "staff", id="approve-a-declined-event"),
    pytest.param(EventStatus.APPROVED, "staff_event_approve", {}, "staff", id="approve-twice"),
    pytest.param(EventStatus.DRAFT, "staff_event_decline", {"reason": "Non"}, "staff", id="decline-a-draft"),
    pytest.param(EventStatus.DRAFT, "staff_event_cancel", {"reason": "Pluie"}, "manager", id="cancel-a-draft"),
    pytest.param(EventStatus.SUBMITTED, "staff_event_cancel", {"reason": "Pluie"}, "staff",
                 id="cancel-a-submitted-event"),
    pytest.param(EventStatus.CANCELLED, "staff_event_cancel", {"reason": "Encore"}, "manager", id="cancel-twice"),
    pytest.param(EventStatus.APPROVED, "staff_event_submit", {}, "editor", id="submit-an-approved-event"),
    pytest.param(EventStatus.SUBMITTED, "staff_event_submit", {}, "editor", id="submit-twice"),
    pytest.param(EventStatus.CANCELLED, "staff_event_submit", {}, "staff", id="submit-a-cancelled-event"),
]


@pytest.mark.parametrize(("status", "url_name", "data", "who"), ILLEGAL_TRANSITIONS)
async def test_illegal_transition_is_refused_with_a_message_and_changes_nothing(session, status, url_name, data,
                                                                                  who):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="gala", status=status,
                                          submitted_at=utcnow() if status == EventStatus.SUBMITTED else None)
    before = await event_row(session, event_id)
    client = await client_for(getattr(people, who))
    response = await client.post(url(url_name, event_id), data)
    assert response["Location"] == url("staff_event", event_id)
    assert "This event cannot go to that state from its current one." in await after_redirect(client, response)
    assert await event_row(session, event_id) == before
    assert await audit_all(session) == []


async def test_decline_needs_a_reason_then_the_editor_sees_it_fixes_the_event_and_resubmits(session):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="gala", title="Gala",
                                          status=EventStatus.SUBMITTED, submitted_at=utcnow())
    staff = await client_for(people.staff)
    form = await staff.get(url("staff_event_decline", event_id))
    assert form.status_code == 200 and "Decline 'Gala'?" in form.text
    for empty in ("", "   "):
        refused = await staff.post(url("staff_event_decline", event_id), {"reason": empty})
        assert refused.status_code == 400 and "This field is required." in refused.text
        assert (await event_row(session, event_id)).status == EventStatus.SUBMITTED
    # From the queue, with no reason: the form comes back with the error.
    assert (await staff.post(url("staff_event_decline", event_id), {"back": "queue"})).status_code == 400
    assert await audit_all(session) == []

    declined = await staff.post(url("staff_event_decline", event_id), {"reason": "  Il manque le lieu.  "})
    assert "Declined: the association sees your reason." in await after_redirect(staff, declined)
    row = await event_row(session, event_id)
    assert row.status == EventStatus.DECLINED and row.decision_reason == "Il manque le lieu."
    [entry] = await audit_all(session, "event.declined")
    assert entry.changes == {"status": ["submitted", "declined"], "reason": [None, "Il manque le lieu."]}

    editor = await client_for(people.editor)
    page = (await editor.get(url("staff_event", event_id))).text
    assert "Il manque le lieu." in page and url("staff_event_edit", event_id) in page
    edited = await editor.post(url("staff_event_edit", event_id), event_fields(people.bde, title="Gala",
                                                                               location="Salle des fêtes"))
    assert edited.status_code == 302
    resubmitted = await editor.post(url("staff_event_submit", event_id))
    assert resubmitted.status_code == 302
    row = await event_row(session, event_id)
    assert row.status == EventStatus.SUBMITTED and row.location == "Salle des fêtes" and row.decision_reason == ""


async def test_decline_from_the_queue_goes_back_to_the_queue(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", status=EventStatus.SUBMITTED,
                                          submitted_at=utcnow())
    staff = await client_for(people.staff)
    response = await staff.post(url("staff_event_decline", event_id), {"reason": "Doublon", "back": "queue"})
    assert response["Location"] == url("staff_queue")
    assert (await event_row(session, event_id)).status == EventStatus.DECLINED


async def test_manager_cancels_a_published_event_with_a_reason_and_the_page_stays_up_with_a_banner(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", title="Gala")
    student = await factories.user(email="bob@etu.test")
    await factories.registration(event_id=event_id, user_id=student)
    manager = await client_for(people.manager)
    form = await manager.get(url("staff_event_cancel", event_id))
    assert form.status_code == 200 and "Cancel 'Gala'?" in form.text
    refused = await manager.post(url("staff_event_cancel", event_id), {"reason": ""})
    assert refused.status_code == 400 and "This field is required." in refused.text
    assert (await event_row(session, event_id)).status == EventStatus.APPROVED

    response = await manager.post(url("staff_event_cancel", event_id), {"reason": "Salle inondée"})
    assert response["Location"] == url("staff_event", event_id)
    assert "Cancelled: the page stays up with a banner" in await after_redirect(manager, response)
    row = await event_row(session, event_id)
    assert row.status == EventStatus.CANCELLED and row.decision_reason == "Salle inondée" and row.sequence == 1
    [entry] = await audit_all(session, "event.cancelled")
    assert entry.actor_id == people.manager
    assert entry.changes == {"status": ["approved", "cancelled"], "reason": [None, "Salle inondée"]}
    public = await (await client_for()).get(url("event_detail", "gala"))
    assert public.status_code == 200
    assert "This event is cancelled." in public.text and "Salle inondée" in public.text


async def test_manager_edits_text_date_place_and_capacity_of_a_published_event_not_its_association(session):
    people = await team()
    starts = (utcnow() + timedelta(days=20)).astimezone(PARIS).replace(hour=19, minute=0, second=0, microsecond=0)
    event_id = await factories.event(association_id=people.bde, slug="gala", title="Gala", capacity=10,
                                          location="Le Foyer", starts_at=starts.astimezone(UTC),
                                          description="Tenue correcte.")
    manager = await client_for(people.manager)
    form = await manager.get(url("staff_event_edit", event_id))
    assert form.status_code == 200
    assert "This event is published: its title, description, date, time, place and seats can change" in form.text
    assert 'name="title"' in form.text and 'name="description"' in form.text and 'name="location"' in form.text
    assert 'name="association_id"' not in form.text and 'name="category"' not in form.text

    moved = starts + timedelta(days=1, hours=1)
    response = await manager.post(url("staff_event_edit", event_id), {
        "title": "Gala pirate", "description": "Changé", "association_id": str(people.bds), "category": "sport",
        "starts_at": typed(moved), "ends_at": typed(moved + timedelta(hours=3)), "location": "Amphi A",
        "capacity": "12"})
    page = await after_redirect(manager, response)
    assert "Event saved." in page and "Registered students see the change on the event page." in page
    row = await event_row(session, event_id)
    assert (row.title, row.description, row.association_id, row.category) == (
        "Gala pirate", "Changé", people.bde, "party")
    assert (row.location, row.capacity, row.starts_at) == ("Amphi A", 12, moved.astimezone(UTC))
    assert row.status == EventStatus.APPROVED and row.sequence == 1 and row.changed_at is not None
    [entry] = await audit_all(session, "event.updated")
    assert set(entry.changes) == {"title", "description", "starts_at", "ends_at", "location", "capacity"}
    assert entry.changes["location"] == ["Le Foyer", "Amphi A"] and entry.changes["capacity"] == [10, 12]

    public = await (await client_for()).get(url("event_detail", "gala"))
    assert public.status_code == 200 and "Amphi A" in public.text and "Gala pirate" in public.text


async def test_a_corrected_title_or_description_shows_at_once_and_tells_nobody(session):
    people = await team()
    starts = (utcnow() + timedelta(days=20)).astimezone(PARIS).replace(hour=19, minute=0, second=0, microsecond=0)
    event_id = await factories.event(association_id=people.bde, slug="gala", title="Gala dhiver", capacity=10,
                                     description="Tenue correcte.", starts_at=starts.astimezone(UTC))
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    await factories.registration(event_id=event_id, user_id=alice)
    before = (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
    visitor = await client_for()
    assert "Gala dhiver" in (await visitor.get(url("event_detail", "gala"))).text  # kept in memory now
    manager = await client_for(people.manager)
    published = await event_row(session, event_id)
    fields = {"starts_at": typed(published.starts_at.astimezone(PARIS)),
              "ends_at": typed(published.ends_at.astimezone(PARIS)), "location": published.location,
              "capacity": str(published.capacity)}
    fields.update(title="Gala d'hiver", description="Tenue correcte. Vestiaire à l'entrée.")
    page = await after_redirect(manager, await manager.post(url("staff_event_edit", event_id), fields))
    [entry] = await audit_all(session, "event.updated")
    assert set(entry.changes) == {"title", "description"}, entry.changes
    assert "Event saved." in page and "Registered students see the change" not in page
    row = await event_row(session, event_id)
    # Calendars take the new text (a new SEQUENCE); no banner and no message: not a change to be told.
    assert (row.title, row.sequence, row.changed_at) == ("Gala d'hiver", 1, None)
    assert (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one() == before
    shown = (await visitor.get(url("event_detail", "gala"))).text
    assert "Gala d&#39;hiver" in shown and "Vestiaire à l&#39;entrée." in shown and "Gala dhiver" not in shown
    feed = (await visitor.get("/feeds/events.ics")).content.decode()
    assert "SUMMARY:Gala d'hiver" in feed


async def test_editor_cannot_edit_a_published_event(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", location="Le Foyer")
    editor = await client_for(people.editor)
    assert (await editor.get(url("staff_event_edit", event_id))).status_code == 403
    response = await editor.post(url("staff_event_edit", event_id), {
        "starts_at": "2030-05-01T19:00", "ends_at": "2030-05-01T22:00", "location": "Ailleurs", "capacity": "5"})
    assert response.status_code == 403
    assert (await event_row(session, event_id)).location == "Le Foyer"


async def test_capacity_below_the_confirmed_count_is_refused_with_a_clear_message(session):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=5)
    for user_id in await students(3):
        await factories.registration(event_id=event_id, user_id=user_id)
    before = await event_row(session, event_id)
    manager = await client_for(people.manager)
    response = await manager.post(url("staff_event_edit", event_id), {
        "title": before.title, "starts_at": typed(before.starts_at), "ends_at": typed(before.ends_at),
        "location": "", "capacity": "2"})
    assert response.status_code == 400
    assert ("3 seats are taken (confirmed, or offered and not answered yet): the capacity cannot go below 3. "
            "Remove attendees first if you must." in response.text)
    assert await event_row(session, event_id) == before and await audit_all(session) == []
    # Exactly the confirmed count is fine.
    fine = await manager.post(url("staff_event_edit", event_id), {
        "title": before.title, "starts_at": typed(before.starts_at), "ends_at": typed(before.ends_at),
        "location": "", "capacity": "3"})
    assert fine.status_code == 302 and (await event_row(session, event_id)).capacity == 3


async def test_raising_capacity_promotes_the_waitlist_in_order(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=1)
    first, *waiting = await students(4)
    await factories.registration(event_id=event_id, user_id=first)
    for user_id in waiting:  # the event is full: in line, in this order
        await factories.registration(event_id=event_id, user_id=user_id)
    row = await event_row(session, event_id)
    manager = await client_for(people.manager)
    response = await manager.post(url("staff_event_edit", event_id), {
        "title": row.title, "starts_at": typed(row.starts_at), "ends_at": typed(row.ends_at),
        "location": "", "capacity": "3"})
    assert "2 students promoted from the waitlist." in await after_redirect(manager, response)
    states = await registration_states(session, event_id)
    assert [states[user_id] for user_id in [first, *waiting]] == [
        RegistrationStatus.CONFIRMED, RegistrationStatus.CONFIRMED, RegistrationStatus.CONFIRMED,
        RegistrationStatus.WAITLISTED]
    page = (await manager.get(url("staff_attendees", event_id))).text
    assert re.search(r"<td[^>]*>1</td><td>S3</td>", page)  # the last one is now first in line


async def test_making_the_event_unlimited_confirms_the_whole_waitlist(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=1)
    first, *waiting = await students(3)
    await factories.registration(event_id=event_id, user_id=first)
    for user_id in waiting:  # the event is full: in line, in this order
        await factories.registration(event_id=event_id, user_id=user_id)
    row = await event_row(session, event_id)
    response = await (await client_for(people.staff)).post(url("staff_event_edit", event_id), {
        "title": row.title, "starts_at": typed(row.starts_at), "ends_at": typed(row.ends_at),
        "location": "", "capacity": ""})
    assert response.status_code == 302
    assert (await event_row(session, event_id)).capacity is None
    assert set((await registration_states(session, event_id)).values()) == {RegistrationStatus.CONFIRMED}


# Recurring series.

async def test_weekly_series_creates_one_draft_per_week_until_the_date_at_the_same_paris_time(session):
    people = await team()
    editor = await client_for(people.editor)
    form = await editor.get(url("staff_series_new"))
    assert form.status_code == 200 and "New recurring series" in form.text
    # Across the change to summer time (31 March 2030): every session stays at 19:00 in Paris.
    response = await editor.post(url("staff_series_new"), {
        **event_fields(people.bde, title="Club théâtre", starts=paris(2030, 3, 18, 19), hours=2),
        "every_weeks": "1", "until": "2030-04-08"})
    assert response["Location"] == url("staff_events")
    assert "4 draft events created." in await after_redirect(editor, response)
    rows = await events_all(session)
    assert [row.starts_at.astimezone(PARIS) for row in rows] == [
        paris(2030, 3, 18, 19), paris(2030, 3, 25, 19), paris(2030, 4, 1, 19), paris(2030, 4, 8, 19)]
    assert [row.ends_at - row.starts_at for row in rows] == [timedelta(hours=2)] * 4
    assert {row.status for row in rows} == {EventStatus.DRAFT}
    assert {row.title for row in rows} == {"Club théâtre"} and len({row.slug for row in rows}) == 4
    assert len(await audit_all(session, "event.created")) == 4


async def test_series_every_two_weeks_includes_the_last_date(session):
    people = await team()
    response = await (await client_for(people.editor)).post(url("staff_series_new"), {
        **event_fields(people.bde, title="Ciné-club", starts=paris(2030, 10, 1, 20)),
        "every_weeks": "2", "until": "2030-10-29"})
    assert response.status_code == 302
    assert [row.starts_at.astimezone(PARIS).date().isoformat() for row in await events_all(session)] == [
        "2030-10-01", "2030-10-15", "2030-10-29"]


async def test_a_weekly_series_over_a_full_year_never_drops_its_last_date(session):
    people = await team()
    # 1 January to 31 December 2030, both Tuesdays: 53 dates, within the form's one-year limit.
    response = await (await client_for(people.editor)).post(url("staff_series_new"), {
        **event_fields(people.bde, title="Permanence", starts=paris(2030, 1, 1, 12)),
        "every_weeks": "1", "until": "2030-12-31"})
    rows = await events_all(session)
    if response.status_code == 400:  # refusing the series outright would be honest too
        assert rows == []
    else:
        assert response.status_code == 302
        assert len(rows) == 53
        assert rows[-1].starts_at.astimezone(PARIS).date().isoformat() == "2030-12-31"


@pytest.mark.parametrize(("extra", "error"), [
    ({"every_weeks": "1", "until": "2030-04-01"}, "The last date is before the first event."),
    ({"every_weeks": "1", "until": "2031-06-01"}, "A series covers one year at most."),
    ({"every_weeks": "0", "until": "2030-06-01"}, "Ensure this value is greater than or equal to 1."),
    ({"every_weeks": "1", "until": ""}, "This field is required."),
])
async def test_invalid_series_shows_the_error_and_creates_nothing(session, extra, error):
    people = await team()
    response = await (await client_for(people.editor)).post(url("staff_series_new"), {
        **event_fields(people.bde, starts=paris(2030, 5, 1, 19)), **extra})
    assert response.status_code == 400 and error in response.text
    assert await events_all(session) == []


async def test_each_event_of_a_series_is_cancelled_on_its_own(session):
    people = await team()
    editor, staff, manager = (await client_for(people.editor), await client_for(people.staff),
                              await client_for(people.manager))
    start = (utcnow() + timedelta(days=30)).astimezone(PARIS).replace(hour=18, minute=0, second=0, microsecond=0)
    await editor.post(url("staff_series_new"), {**event_fields(people.bde, title="Atelier", starts=start),
                                                "every_weeks": "1", "until": (start + timedelta(days=14)).date()})
    first, second, third = await events_all(session)
    for event in (first, second):
        assert (await editor.post(url("staff_event_submit", event.id))).status_code == 302
        assert (await staff.post(url("staff_event_approve", event.id))).status_code == 302
    cancelled = await manager.post(url("staff_event_cancel", second.id), {"reason": "Vacances"})
    assert cancelled.status_code == 302
    assert [(await event_row(session, event.id)).status for event in (first, second, third)] == [
        EventStatus.APPROVED, EventStatus.CANCELLED, EventStatus.DRAFT]


# Deleting.

async def test_deleting_a_draft_asks_first_then_deletes_it_with_an_audit_entry(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="quiz", title="Quiz raté",
                                          status=EventStatus.DRAFT)
    editor = await client_for(people.editor)
    question = await editor.get(url("staff_event_delete", event_id))
    assert question.status_code == 200
    assert "Delete this event?" in question.text and "&#39;Quiz raté&#39; will be deleted for good." in question.text
    assert await event_row(session, event_id) is not None
    response = await editor.post(url("staff_event_delete", event_id))
    assert response["Location"] == url("staff_events")
    assert "Event deleted." in await after_redirect(editor, response)
    assert await event_row(session, event_id) is None
    [entry] = await audit_all(session, "event.deleted")
    assert entry.actor_id == people.editor and entry.object_id == event_id
    assert entry.changes == {"title": ["Quiz raté", None], "status": ["draft", None]}


@pytest.mark.parametrize("status", [EventStatus.APPROVED, EventStatus.CANCELLED])
async def test_a_published_event_is_never_deleted(session, status):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    event_id = await support.event_create(association_id=people.bde, slug="gala", status=status)
    staff = await client_for(people.staff)
    assert (await staff.get(url("staff_event_delete", event_id))).status_code == 403
    assert (await staff.post(url("staff_event_delete", event_id))).status_code == 403
    assert await event_row(session, event_id) is not None and await audit_all(session) == []


# The event's management page.

async def test_event_page_shows_facts_history_and_only_the_buttons_the_role_allows():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", title="Gala",
                                          status=EventStatus.SUBMITTED, submitted_at=utcnow(), location="Le Foyer")
    staff = await client_for(people.staff)
    await staff.post(url("staff_event_decline", event_id), {"reason": "Trop tôt"})
    editor_page = (await (await client_for(people.editor)).get(url("staff_event", event_id))).text
    assert "Gala" in editor_page and "Le Foyer" in editor_page and "Declined" in editor_page
    assert "event.declined" in editor_page and "Sam Staff" in editor_page and "Trop tôt" in editor_page
    assert "Submit for approval" in editor_page and url("staff_event_edit", event_id) in editor_page
    assert url("staff_event_approve", event_id) not in editor_page
    assert url("staff_event_cancel", event_id) not in editor_page

    published = await factories.event(association_id=people.bde, slug="bal", title="Bal")
    manager_page = (await (await client_for(people.manager)).get(url("staff_event", published))).text
    assert url("staff_event_cancel", published) in manager_page and url("staff_attendees", published) in manager_page
    assert url("staff_event_delete", published) not in manager_page
    editor_published = (await (await client_for(people.editor)).get(url("staff_event", published))).text
    assert url("staff_event_cancel", published) not in editor_published
    assert url("staff_event_edit", published) not in editor_published




async def test_user_text_is_escaped_on_every_staff_page():
    people = await team()
    evil = "<script>alert(1)</script>"
    event_id = await factories.event(association_id=people.bde, slug="evil", title=f"Gala {evil}",
                                          status=EventStatus.SUBMITTED, submitted_at=utcnow(), location=evil)
    student = await factories.user(email="evil@etu.test", display_name=f"Eve {evil}")
    staff = await client_for(people.staff)
    await staff.post(url("staff_event_decline", event_id), {"reason": evil})
    await staff.post(url("staff_members", people.bde), {"email": "evil@etu.test", "role": "member"})
    # raw: approved with the declined reason still on it (resubmitting through the services clears the reason
    # whose escaping this test checks).
    async with db.write_session() as write, write.begin():
        await write.execute(update(Event).where(Event.id == event_id).values(status=EventStatus.APPROVED))
    registration = await factories.registration_id(event_id=event_id, user_id=student)
    for path in (url("staff_event", event_id), url("staff_events"), url("staff_audit"), url("staff_users"),
                 url("staff_attendees", event_id), url("staff_checkin", event_id),
                 url("staff_members", people.bde), url("staff_attendee_remove", event_id, registration)):
        response = await staff.get(path)
        assert response.status_code == 200, path
        assert evil not in response.text, path
    page = (await staff.get(url("staff_event", event_id))).text
    assert "Gala &lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_registered_students_see_that_a_published_event_changed(session):
    from datetime import timedelta

    from django.test import AsyncClient

    from events.models import Role
    from events.rules.permissions import Actor
    from events.staff import services as staff_services
    from hyperion import db

    association_id = await factories.association(slug="changes", name="Changes")
    start = utcnow() + timedelta(days=10)
    event_id = await factories.event(association_id=association_id, slug="moved", title="Moved",
                                          starts_at=start)
    student = await factories.user(email="moved@etu.test", display_name="Moved")
    await factories.registration(event_id=event_id, user_id=student)
    registered, visitor = AsyncClient(), AsyncClient()
    await support.login(registered, student)
    assert "This event changed" not in (await registered.get("/events/moved/", headers={"Accept-Language": "en"})).text
    manager = Actor(await factories.user(email="mgr@etu.test"), False, {association_id: Role.MANAGER})
    async with db.write_session() as write:
        await staff_services.event_update(write, actor=manager, event_id=event_id,
                                          values={"location": "Salle B"})
    page = (await registered.get("/events/moved/", headers={"Accept-Language": "en"})).text
    assert "This event changed on" in page and "Salle B" in page
    assert "This event changed" not in (await visitor.get("/events/moved/", headers={"Accept-Language": "en"})).text


async def test_an_editor_sets_a_lottery_opening_only_with_an_opening_time_and_sees_its_entries():
    people = await team()
    editor = await client_for(people.editor)
    fields = event_fields(people.bde, title="Ski trip", lottery_minutes="10")
    refused = await editor.post(url("staff_event_new"), fields)
    assert refused.status_code == 400  # the form again, with why
    assert "A lottery needs an opening time" in refused.text
    async with db.read_session() as session:
        assert (await session.execute(select(Event.id).where(Event.title == "Ski trip"))).first() is None
    too_long = await editor.post(url("staff_event_new"), {**fields, "registration_opens_at": typed(
        paris(2030, 5, 1, 18)), "lottery_minutes": "120"})  # would end after the start (19:00)
    assert "The lottery window must end before registration closes" in too_long.text
    created = await editor.post(url("staff_event_new"), {**fields, "registration_opens_at": typed(
        paris(2030, 4, 10, 12))})
    assert created.status_code == 302
    async with db.read_session() as session:
        event_id, minutes = (await session.execute(select(Event.id, Event.lottery_minutes)
                                                   .where(Event.title == "Ski trip"))).one()
    assert minutes == 10
    page = (await editor.get(url("staff_event", event_id))).text
    assert "the seats are drawn at random on" in page and "Entries so far: 0." in page
