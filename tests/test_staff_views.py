"""The management area's pages and forms: events (create, edit, series, lifecycle, delete), attendees
(add, remove, check-in, CSV), associations, members, users, the audit log and the navigation."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import AsyncClient
from django.urls import reverse
from sqlalchemy import insert, select, update

from events.models import (
    Association,
    AuditEntry,
    Event,
    EventStatus,
    Membership,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from hyperion import db
from tests import support

PARIS = ZoneInfo("Europe/Paris")


# Set-up.

async def client_for(user_id: int | None = None) -> AsyncClient:
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # as the language switch leaves it
    if user_id is not None:
        await support.login(client, user_id)
    return client


@dataclass
class Team:
    bde: int
    bds: int
    staff: int
    manager: int
    editor: int
    student: int


async def team() -> Team:
    """Two associations; a staff member, the BDE's manager and editor, a student (member of the BDE)."""
    async with db.write_session() as session, session.begin():
        async def add(model, **values) -> int:
            return (await session.execute(insert(model).returning(model.id), values)).scalar_one()

        bde = await add(Association, slug="bde", name="BDE", description="")
        bds = await add(Association, slug="bds", name="BDS", description="")
        people = {}
        for email, name in [("staff", "Sam Staff"), ("manager", "Mona Manager"), ("editor", "Eddy Editor"),
                            ("student", "Stella Student")]:
            people[email] = await add(User, email=f"{email}@etu.test", display_name=name, password_hash="!",
                                      is_staff=email == "staff", email_verified_at=utcnow())
        for who, role in [("manager", Role.MANAGER), ("editor", Role.EDITOR), ("student", Role.MEMBER)]:
            await add(Membership, user_id=people[who], association_id=bde, role=role)
    return Team(bde, bds, people["staff"], people["manager"], people["editor"], people["student"])


def paris(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def typed(moment: datetime) -> str:
    """What a datetime-local input sends, in Paris time."""
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def event_fields(association_id: int, *, starts: datetime | None = None, hours: int = 3, **overrides) -> dict:
    starts = starts or paris(2030, 5, 1, 19)
    fields = {
        "title": "Soirée jeux", "association_id": str(association_id), "category": "gaming",
        "location": "Le Foyer", "starts_at": typed(starts), "ends_at": typed(starts + timedelta(hours=hours)),
        "capacity": "30", "registration_opens_at": "", "registration_closes_at": "",
        "unregistration_closes_at": "", "description": "Venez nombreux.",
    }
    fields.update(overrides)
    return fields


def url(name: str, *args) -> str:
    return reverse(name, args=args)


async def after_redirect(client: AsyncClient, response) -> str:
    """The page the browser lands on after a form (where the flash message shows)."""
    assert response.status_code == 302, (response.status_code, response.content[:500])
    landing = await client.get(response["Location"])
    assert landing.status_code == 200, landing.status_code
    return landing.text


# Database checks (Core rows: the read session's identity map never hands back a stale object).

async def event_row(session, event_id: int):
    return (await session.execute(select(*Event.__table__.c).where(Event.id == event_id))).one_or_none()


async def events_all(session) -> list:
    return (await session.execute(select(*Event.__table__.c).order_by(Event.starts_at, Event.id))).all()


async def audit_all(session, action: str | None = None) -> list:
    statement = select(*AuditEntry.__table__.c).order_by(AuditEntry.id)
    if action:
        statement = statement.where(AuditEntry.action == action)
    return (await session.execute(statement)).all()


async def registration_states(session, event_id: int) -> dict[int, RegistrationStatus]:
    rows = await session.execute(select(Registration.user_id, Registration.status)
                                 .where(Registration.event_id == event_id))
    return {row.user_id: row.status for row in rows}


async def students(count: int, prefix: str = "s") -> list[int]:
    return [await support.user_create(email=f"{prefix}{number}@etu.test", display_name=f"{prefix.upper()}{number}")
            for number in range(count)]


async def registration_at(event_id: int, user_id: int, status: RegistrationStatus, queued_at: datetime,
                          checked_in_at: datetime | None = None) -> int:
    async with db.write_session() as session, session.begin():
        return (await session.execute(insert(Registration).returning(Registration.id), {
            "event_id": event_id, "user_id": user_id, "status": status, "queued_at": queued_at,
            "checked_in_at": checked_in_at})).scalar_one()


# Navigation and overview.

async def test_nav_shows_manage_with_the_queue_count_for_staff_manage_for_editors_nothing_for_students():
    people = await team()
    for slug in ("a", "b"):
        await support.event_create(association_id=people.bde, slug=slug, status=EventStatus.SUBMITTED,
                                   submitted_at=utcnow())
    await support.event_create(association_id=people.bde, slug="draft", status=EventStatus.DRAFT)

    staff_home = (await (await client_for(people.staff)).get("/")).text
    assert re.search(r'href="/manage/"[^>]*>Manage <span class="badge"[^>]*>2</span>', staff_home)
    editor_home = (await (await client_for(people.editor)).get("/")).text
    assert 'href="/manage/"' in editor_home and 'class="badge"' not in editor_home
    student_home = (await (await client_for(people.student)).get("/")).text
    assert "/manage/" not in student_home and "Manage" not in student_home
    assert "/manage/" not in (await (await client_for()).get("/")).text


async def test_dashboard_shows_the_queue_to_staff_and_their_associations_to_editors():
    people = await team()
    await support.event_create(association_id=people.bds, slug="tournoi", title="Tournoi de foot",
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
    await support.event_create(association_id=people.bde, slug="gala", title="Gala d'hiver")
    await support.event_create(association_id=people.bde, slug="quiz", title="Quiz musical", status=EventStatus.DRAFT)
    await support.event_create(association_id=people.bds, slug="secret", title="Brouillon BDS",
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
    event_id = await support.event_create(association_id=people.bde, slug="quiz", title="Quiz",
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
        await support.event_create(association_id=people.bde, slug=slug, title=title, status=EventStatus.SUBMITTED,
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
    event_id = await support.event_create(association_id=people.bde, slug="gala", status=EventStatus.SUBMITTED,
                                          submitted_at=utcnow())
    staff = await client_for(people.staff)
    response = await staff.post(url("staff_event_decline", event_id), {"reason": "Doublon", "back": "queue"})
    assert response["Location"] == url("staff_queue")
    assert (await event_row(session, event_id)).status == EventStatus.DECLINED


async def test_manager_cancels_a_published_event_with_a_reason_and_the_page_stays_up_with_a_banner(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", title="Gala")
    student = await support.user_create(email="bob@etu.test")
    await support.registration_create_raw(event_id=event_id, user_id=student)
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


async def test_manager_edits_only_date_place_and_capacity_of_a_published_event(session):
    people = await team()
    starts = (utcnow() + timedelta(days=20)).astimezone(PARIS).replace(hour=19, minute=0, second=0, microsecond=0)
    event_id = await support.event_create(association_id=people.bde, slug="gala", title="Gala", capacity=10,
                                          location="Le Foyer", starts_at=starts.astimezone(UTC),
                                          description="Tenue correcte.")
    manager = await client_for(people.manager)
    form = await manager.get(url("staff_event_edit", event_id))
    assert form.status_code == 200
    assert "This event is published: only its date, time, place and seats can change" in form.text
    assert 'name="title"' not in form.text and 'name="location"' in form.text and 'name="capacity"' in form.text

    moved = starts + timedelta(days=1, hours=1)
    response = await manager.post(url("staff_event_edit", event_id), {
        "title": "Gala pirate", "description": "Changé", "association_id": str(people.bds), "category": "sport",
        "starts_at": typed(moved), "ends_at": typed(moved + timedelta(hours=3)), "location": "Amphi A",
        "capacity": "12"})
    page = await after_redirect(manager, response)
    assert "Event saved." in page and "Registered students see the change on the event page." in page
    row = await event_row(session, event_id)
    assert (row.title, row.description, row.association_id, row.category) == (
        "Gala", "Tenue correcte.", people.bde, "party")
    assert (row.location, row.capacity, row.starts_at) == ("Amphi A", 12, moved.astimezone(UTC))
    assert row.status == EventStatus.APPROVED and row.sequence == 1 and row.changed_at is not None
    [entry] = await audit_all(session, "event.updated")
    assert set(entry.changes) == {"starts_at", "ends_at", "location", "capacity"}
    assert entry.changes["location"] == ["Le Foyer", "Amphi A"] and entry.changes["capacity"] == [10, 12]

    public = await (await client_for()).get(url("event_detail", "gala"))
    assert public.status_code == 200 and "Amphi A" in public.text and "Gala" in public.text


async def test_editor_cannot_edit_a_published_event(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", location="Le Foyer")
    editor = await client_for(people.editor)
    assert (await editor.get(url("staff_event_edit", event_id))).status_code == 403
    response = await editor.post(url("staff_event_edit", event_id), {
        "starts_at": "2030-05-01T19:00", "ends_at": "2030-05-01T22:00", "location": "Ailleurs", "capacity": "5"})
    assert response.status_code == 403
    assert (await event_row(session, event_id)).location == "Le Foyer"


async def test_capacity_below_the_confirmed_count_is_refused_with_a_clear_message(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=5)
    for user_id in await students(3):
        await support.registration_create_raw(event_id=event_id, user_id=user_id)
    before = await event_row(session, event_id)
    manager = await client_for(people.manager)
    response = await manager.post(url("staff_event_edit", event_id), {
        "starts_at": typed(before.starts_at), "ends_at": typed(before.ends_at), "location": "", "capacity": "2"})
    assert response.status_code == 400
    assert ("3 students are confirmed: the capacity cannot go below 3. Remove attendees first if you must."
            in response.text)
    assert await event_row(session, event_id) == before and await audit_all(session) == []
    # Exactly the confirmed count is fine.
    fine = await manager.post(url("staff_event_edit", event_id), {
        "starts_at": typed(before.starts_at), "ends_at": typed(before.ends_at), "location": "", "capacity": "3"})
    assert fine.status_code == 302 and (await event_row(session, event_id)).capacity == 3


async def test_raising_capacity_promotes_the_waitlist_in_order(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=1)
    first, *waiting = await students(4)
    await support.registration_create_raw(event_id=event_id, user_id=first)
    for user_id in waiting:
        await support.registration_create_raw(event_id=event_id, user_id=user_id,
                                              status=RegistrationStatus.WAITLISTED)
    row = await event_row(session, event_id)
    manager = await client_for(people.manager)
    response = await manager.post(url("staff_event_edit", event_id), {
        "starts_at": typed(row.starts_at), "ends_at": typed(row.ends_at), "location": "", "capacity": "3"})
    assert "2 students promoted from the waitlist." in await after_redirect(manager, response)
    states = await registration_states(session, event_id)
    assert [states[user_id] for user_id in [first, *waiting]] == [
        RegistrationStatus.CONFIRMED, RegistrationStatus.CONFIRMED, RegistrationStatus.CONFIRMED,
        RegistrationStatus.WAITLISTED]
    page = (await manager.get(url("staff_attendees", event_id))).text
    assert re.search(r"<td[^>]*>1</td><td>S3</td>", page)  # the last one is now first in line


async def test_making_the_event_unlimited_confirms_the_whole_waitlist(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=1)
    first, *waiting = await students(3)
    await support.registration_create_raw(event_id=event_id, user_id=first)
    for user_id in waiting:
        await support.registration_create_raw(event_id=event_id, user_id=user_id,
                                              status=RegistrationStatus.WAITLISTED)
    row = await event_row(session, event_id)
    response = await (await client_for(people.staff)).post(url("staff_event_edit", event_id), {
        "starts_at": typed(row.starts_at), "ends_at": typed(row.ends_at), "location": "", "capacity": ""})
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
    event_id = await support.event_create(association_id=people.bde, slug="quiz", title="Quiz raté",
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
    event_id = await support.event_create(association_id=people.bde, slug="gala", status=status)
    staff = await client_for(people.staff)
    assert (await staff.get(url("staff_event_delete", event_id))).status_code == 403
    assert (await staff.post(url("staff_event_delete", event_id))).status_code == 403
    assert await event_row(session, event_id) is not None and await audit_all(session) == []


# The event's management page.

async def test_event_page_shows_facts_history_and_only_the_buttons_the_role_allows():
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", title="Gala",
                                          status=EventStatus.SUBMITTED, submitted_at=utcnow(), location="Le Foyer")
    staff = await client_for(people.staff)
    await staff.post(url("staff_event_decline", event_id), {"reason": "Trop tôt"})
    editor_page = (await (await client_for(people.editor)).get(url("staff_event", event_id))).text
    assert "Gala" in editor_page and "Le Foyer" in editor_page and "Declined" in editor_page
    assert "event.declined" in editor_page and "Sam Staff" in editor_page and "Trop tôt" in editor_page
    assert "Submit for approval" in editor_page and url("staff_event_edit", event_id) in editor_page
    assert url("staff_event_approve", event_id) not in editor_page
    assert url("staff_event_cancel", event_id) not in editor_page

    published = await support.event_create(association_id=people.bde, slug="bal", title="Bal")
    manager_page = (await (await client_for(people.manager)).get(url("staff_event", published))).text
    assert url("staff_event_cancel", published) in manager_page and url("staff_attendees", published) in manager_page
    assert url("staff_event_delete", published) not in manager_page
    editor_published = (await (await client_for(people.editor)).get(url("staff_event", published))).text
    assert url("staff_event_cancel", published) not in editor_published
    assert url("staff_event_edit", published) not in editor_published


# Attendees.

async def test_attendees_page_lists_confirmed_and_the_waitlist_with_positions_and_searches(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=2)
    alice = await support.user_create(email="alice@etu.test", display_name="Alice Martin")
    bob = await support.user_create(email="bob@etu.test", display_name="Bob Durand")
    carl = await support.user_create(email="carl@etu.test", display_name="Carl Petit")
    dana = await support.user_create(email="dana@etu.test", display_name="Dana Roux")
    for user_id in (bob, alice):
        await support.registration_create_raw(event_id=event_id, user_id=user_id)
    for user_id in (dana, carl):
        await support.registration_create_raw(event_id=event_id, user_id=user_id,
                                              status=RegistrationStatus.WAITLISTED)
    page = await (await client_for(people.editor)).get(url("staff_attendees", event_id))
    assert page.status_code == 200
    assert "2 / 2 confirmed · 2 on the waitlist" in page.text
    assert page.text.index("Alice Martin") < page.text.index("Bob Durand")
    assert re.search(r"<td[^>]*>1</td><td>Dana Roux</td>.*<td[^>]*>2</td><td>Carl Petit</td>", page.text, re.S)
    assert "Add a student" not in page.text and "/remove/" not in page.text  # editors only look
    searched = (await (await client_for(people.editor)).get(url("staff_attendees", event_id), {"q": "DUR"})).text
    assert "Bob Durand" in searched and "Alice Martin" not in searched and "Dana Roux" not in searched
    by_email = (await (await client_for(people.editor)).get(url("staff_attendees", event_id), {"q": "carl@"})).text
    assert "Carl Petit" in by_email and "Bob Durand" not in by_email


async def test_manager_adds_students_by_email_confirmed_then_waitlisted_with_audit_entries(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=1)
    alice = await support.user_create(email="alice@etu.test", display_name="Alice")
    bob = await support.user_create(email="bob@etu.test", display_name="Bob")
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
    event_id = await support.event_create(association_id=people.bde, slug="gala")
    alice = await support.user_create(email="alice@etu.test")
    await support.registration_create_raw(event_id=event_id, user_id=alice)
    response = await (await client_for(people.manager)).post(url("staff_attendees", event_id), {"email": email})
    assert response.status_code == 400 and error in response.text
    assert await registration_states(session, event_id) == {alice: RegistrationStatus.CONFIRMED}
    assert await audit_all(session) == []


async def test_staff_may_add_a_student_after_registration_closed(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala",
                                          registration_closes_at=utcnow() - timedelta(hours=1))
    alice = await support.user_create(email="alice@etu.test")
    response = await (await client_for(people.manager)).post(url("staff_attendees", event_id),
                                                             {"email": "alice@etu.test"})
    assert response.status_code == 302
    assert await registration_states(session, event_id) == {alice: RegistrationStatus.CONFIRMED}


async def test_adding_to_an_unpublished_event_is_refused(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", status=EventStatus.DRAFT)
    await support.user_create(email="alice@etu.test")
    response = await (await client_for(people.manager)).post(url("staff_attendees", event_id),
                                                             {"email": "alice@etu.test"})
    assert response.status_code == 400 and "Registration is not open for this event." in response.text
    assert await registration_states(session, event_id) == {} and await audit_all(session) == []


async def test_removing_an_attendee_asks_first_then_promotes_the_first_in_line(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", title="Gala", capacity=1)
    alice = await support.user_create(email="alice@etu.test", display_name="Alice")
    bob = await support.user_create(email="bob@etu.test", display_name="Bob")
    carl = await support.user_create(email="carl@etu.test", display_name="Carl")
    registration = await support.registration_create_raw(event_id=event_id, user_id=alice)
    for user_id in (bob, carl):
        await support.registration_create_raw(event_id=event_id, user_id=user_id,
                                              status=RegistrationStatus.WAITLISTED)
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
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=1)
    alice, bob = await students(2)
    await support.registration_create_raw(event_id=event_id, user_id=alice)
    waiting = await support.registration_create_raw(event_id=event_id, user_id=bob,
                                                    status=RegistrationStatus.WAITLISTED)
    manager = await client_for(people.manager)
    response = await manager.post(url("staff_attendee_remove", event_id, waiting))
    page = await after_redirect(manager, response)
    assert "Removed." in page and "promoted" not in page
    assert await registration_states(session, event_id) == {
        alice: RegistrationStatus.CONFIRMED, bob: RegistrationStatus.CANCELLED}


async def test_check_in_marks_present_and_undoes_with_audit_entries(session):
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=2)
    alice = await support.user_create(email="alice@etu.test", display_name="Alice")
    bob = await support.user_create(email="bob@etu.test", display_name="Bob")
    carl = await support.user_create(email="carl@etu.test", display_name="Carl Waiting")
    registration = await support.registration_create_raw(event_id=event_id, user_id=alice)
    await support.registration_create_raw(event_id=event_id, user_id=bob)
    await support.registration_create_raw(event_id=event_id, user_id=carl, status=RegistrationStatus.WAITLISTED)
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
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=1)
    alice, bob = await students(2)
    await support.registration_create_raw(event_id=event_id, user_id=alice)
    waiting = await support.registration_create_raw(event_id=event_id, user_id=bob,
                                                    status=RegistrationStatus.WAITLISTED)
    response = await (await client_for(people.editor)).post(url("staff_checkin_mark", event_id, waiting))
    assert response.status_code == 404
    assert await audit_all(session) == []


async def test_check_in_search_keeps_the_query_after_a_click():
    people = await team()
    event_id = await support.event_create(association_id=people.bde, slug="gala")
    marie = await support.user_create(email="marie@etu.test", display_name="Jean & Marie")
    registration = await support.registration_create_raw(event_id=event_id, user_id=marie)
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
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=5)
    names = ['=HYPERLINK("x")', "Éloïse Dupré", "+33 6 12", "-2+3", "@SUM(A1)", "\tTab", "\rRetour"]
    user_ids = [await support.user_create(email=f"u{number}@etu.test", display_name=name)
                for number, name in enumerate(names)]
    async with db.write_session() as write, write.begin():
        await write.execute(update(User).where(User.id == user_ids[1]).values(promo=2027))
    queued = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)  # 10:00 in Paris
    checked_in = datetime(2030, 6, 1, 18, 5, tzinfo=UTC)  # 20:05 in Paris (summer time)
    for number, user_id in enumerate(user_ids):
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
    event_id = await support.event_create(association_id=people.bde, slug="gala", capacity=5)
    names = ["a;=1+1;b", "c,+2,d", "e|@SUM(A1)", 'f; "=2+2"', "Jean-Pierre Martin"]
    for number, name in enumerate(names):
        await support.registration_create_raw(
            event_id=event_id, user_id=await support.user_create(email=f"u{number}@etu.test", display_name=name))
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
    newcomer = await support.user_create(email="nina@etu.test", display_name="Nina")
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
    await support.user_create(email="nina@etu.test")
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


# The audit log.

async def test_audit_page_lists_entries_and_filters_by_action_actor_object_type_and_id(session):
    people = await team()
    first = await support.event_create(association_id=people.bde, slug="gala", title="Gala",
                                       status=EventStatus.SUBMITTED, submitted_at=utcnow())
    second = await support.event_create(association_id=people.bde, slug="quiz", title="Quiz",
                                        status=EventStatus.DRAFT)
    staff, editor = await client_for(people.staff), await client_for(people.editor)
    await staff.post(url("staff_event_approve", first))
    await editor.post(url("staff_event_submit", second))
    await staff.post(url("staff_event_decline", second), {"reason": "Trop court"})
    await (await client_for(people.manager)).post(url("staff_members", people.bde),
                                                  {"email": "student@etu.test", "role": "editor"})

    page = await staff.get(url("staff_audit"))
    assert page.status_code == 200
    for action in ("event.approved", "event.submitted", "event.declined", "membership.role_set"):
        assert f"<code>{action}</code>" in page.text
    assert "submitted → approved" in page.text and "Trop court" in page.text and "Mona Manager" in page.text

    def actions(response) -> list[str]:
        assert response.status_code == 200
        return re.findall(r"<code>([\w.]+)</code>", response.text)

    assert actions(await staff.get(url("staff_audit"), {"action": "event.declined"})) == ["event.declined"]
    assert actions(await staff.get(url("staff_audit"), {"action": "event."})) == [
        "event.declined", "event.submitted", "event.approved"]
    assert actions(await staff.get(url("staff_audit"), {"actor": "editor@etu.test"})) == ["event.submitted"]
    assert actions(await staff.get(url("staff_audit"), {"object_type": "user"})) == ["membership.role_set"]
    assert actions(await staff.get(url("staff_audit"), {"object_type": "event", "object_id": second})) == [
        "event.declined", "event.submitted"]
    assert actions(await staff.get(url("staff_audit"), {"action": "nothing.like.this"})) == []
    assert "Nothing recorded yet." in (await staff.get(url("staff_audit"), {"action": "nope"})).text
    # Nonsense in the filters never breaks the page.
    for junk in ({"object_id": "abc"}, {"object_type": "robot"}, {"actor": "not-an-email"}, {"page": "-3"},
                 {"action": "%_\\"}):
        assert (await staff.get(url("staff_audit"), junk)).status_code == 200


async def test_user_text_is_escaped_on_every_staff_page():
    people = await team()
    evil = "<script>alert(1)</script>"
    event_id = await support.event_create(association_id=people.bde, slug="evil", title=f"Gala {evil}",
                                          status=EventStatus.SUBMITTED, submitted_at=utcnow(), location=evil)
    student = await support.user_create(email="evil@etu.test", display_name=f"Eve {evil}")
    staff = await client_for(people.staff)
    await staff.post(url("staff_event_decline", event_id), {"reason": evil})
    await staff.post(url("staff_members", people.bde), {"email": "evil@etu.test", "role": "member"})
    async with db.write_session() as write, write.begin():
        await write.execute(update(Event).where(Event.id == event_id).values(status=EventStatus.APPROVED))
    registration = await support.registration_create_raw(event_id=event_id, user_id=student)
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

    association_id = await support.association_create(slug="changes", name="Changes")
    start = utcnow() + timedelta(days=10)
    event_id = await support.event_create(association_id=association_id, slug="moved", title="Moved",
                                          starts_at=start)
    student = await support.user_create(email="moved@etu.test", display_name="Moved")
    await support.registration_create_raw(event_id=event_id, user_id=student)
    registered, visitor = AsyncClient(), AsyncClient()
    await support.login(registered, student)
    assert "This event changed" not in (await registered.get("/events/moved/", headers={"Accept-Language": "en"})).text
    manager = Actor(await support.user_create(email="mgr@etu.test"), False, {association_id: Role.MANAGER})
    async with db.write_session() as write:
        await staff_services.event_update(write, actor=manager, event_id=event_id,
                                          values={"location": "Salle B"})
    page = (await registered.get("/events/moved/", headers={"Accept-Language": "en"})).text
    assert "This event changed on" in page and "Salle B" in page
    assert "This event changed" not in (await visitor.get("/events/moved/", headers={"Accept-Language": "en"})).text
