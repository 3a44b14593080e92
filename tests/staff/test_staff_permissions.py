"""Who may do what in the management area: every URL and form × every role, checked on the server.

The refusals: anonymous visitors go to the log-in page, students get 403, another association's
editors and managers get 404 for this association's objects (their existence does not leak) and 403 for
staff pages, the association's own editor gets 403 where a manager or the staff is needed, its manager
gets 403 where the staff is needed. After every refused request the database is exactly as before.
The other side: the right role can do each action (and staff can do everything).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient
from django.urls import reverse
from PIL import Image
from sqlalchemy import insert, select

from events.models import (
    Association,
    AuditEntry,
    Event,
    EventStatus,
    Membership,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.rules.tickets import ticket_code
from hyperion import db
from tests import support

PARIS = ZoneInfo("Europe/Paris")
SECRET_TITLES = ("Brouillon confidentiel", "Soumis confidentiel", "Gala publié", "Refusé confidentiel")


@dataclass
class World:
    tag: str  # several worlds can live side by side: slugs and e-mails carry the tag
    own: int
    other: int
    users: dict[str, int]
    draft: int
    submitted: int
    approved: int
    declined: int
    registration: int  # a confirmed student at the approved event
    other_draft: int
    other_approved: int
    other_registration: int
    failed_message: int  # an e-mail the sender gave up on (the staff may send it again)


async def world_create(tag: str = "") -> World:
    """Two associations with events in every state, in one transaction."""
    now = utcnow()
    starts = now + timedelta(days=10)

    # raw: built once per test in one transaction (the services would add the audit entries and e-mails the
    # permission tests do not want), with rows no service makes (a message the sender gave up on).
    async with db.write_session() as session, session.begin():
        async def add(model, **values) -> int:
            return (await session.execute(insert(model).returning(model.id), values)).scalar_one()

        own = await add(Association, slug=f"bde{tag}", name="BDE", description="")
        other = await add(Association, slug=f"bds{tag}", name="BDS", description="")
        users = {}
        for name, is_staff in [("staff", True), ("manager", False), ("editor", False), ("student", False),
                               ("editor_other", False), ("manager_other", False), ("attendee", False),
                               ("newcomer", False)]:
            users[name] = await add(User, email=f"{name.replace('_', '-')}{tag}@etu.test", display_name=name.title(),
                                    password_hash="!", is_staff=is_staff, email_verified_at=utcnow())
        for name, association, role in [("manager", own, Role.MANAGER), ("editor", own, Role.EDITOR),
                                        ("student", own, Role.MEMBER), ("editor_other", other, Role.EDITOR),
                                        ("manager_other", other, Role.MANAGER)]:
            await add(Membership, user_id=users[name], association_id=association, role=role)

        async def event(association, slug, title, status) -> int:
            return await add(Event, association_id=association, slug=f"{slug}{tag}", title=title, category="party",
                             starts_at=starts, ends_at=starts + timedelta(hours=3), capacity=10, status=status,
                             submitted_at=now if status == EventStatus.SUBMITTED else None, questions=[QUESTION])

        draft = await event(own, "draft", SECRET_TITLES[0], EventStatus.DRAFT)
        submitted = await event(own, "submitted", SECRET_TITLES[1], EventStatus.SUBMITTED)
        approved = await event(own, "gala", SECRET_TITLES[2], EventStatus.APPROVED)
        declined = await event(own, "declined", SECRET_TITLES[3], EventStatus.DECLINED)
        other_draft = await event(other, "other-draft", "Brouillon BDS", EventStatus.DRAFT)
        other_approved = await event(other, "other-gala", "Match BDS", EventStatus.APPROVED)
        registration = await add(Registration, event_id=approved, user_id=users["attendee"],
                                 status=RegistrationStatus.CONFIRMED)
        other_registration = await add(Registration, event_id=other_approved, user_id=users["attendee"],
                                       status=RegistrationStatus.CONFIRMED)
        failed_message = await add(OutboxMessage, kind="event.cancelled", recipient_id=users["attendee"],
                                   event_id=approved, payload={}, status=OutboxStatus.FAILED, send_after=now,
                                   attempts=5, last_error="550 mailbox unavailable", created_at=now)
    return World(tag, own, other, users, draft, submitted, approved, declined, registration, other_draft,
                 other_approved, other_registration, failed_message)


def typed(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def event_fields(association_id: int, title: str = "Nouvel événement") -> dict:
    starts = (utcnow() + timedelta(days=30)).astimezone(PARIS).replace(hour=19, minute=0, second=0, microsecond=0)
    return {"title": title, "association_id": str(association_id), "category": "party", "location": "Foyer",
            "starts_at": typed(starts), "ends_at": typed(starts + timedelta(hours=2)), "capacity": "20",
            "description": ""}


def published_fields() -> dict:
    starts = (utcnow() + timedelta(days=12)).astimezone(PARIS).replace(hour=20, minute=0, second=0, microsecond=0)
    return {"title": "Gala publié", "starts_at": typed(starts), "ends_at": typed(starts + timedelta(hours=2)),
            "location": "Ailleurs", "capacity": "15"}


def series_fields(association_id: int) -> dict:
    fields = event_fields(association_id, "Atelier")
    until = (datetime.fromisoformat(fields["starts_at"]) + timedelta(weeks=2)).date().isoformat()
    return {**fields, "every_weeks": "1", "until": until}


def a_photo() -> SimpleUploadedFile:
    """A small JPEG, as a new upload each time (a form reads its file once)."""
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), (200, 60, 40)).save(buffer, "JPEG")
    return SimpleUploadedFile("photo.jpg", buffer.getvalue(), content_type="image/jpeg")


@dataclass(frozen=True)
class Action:
    """One management URL and method. ``needs``: the least role of the association (editor < manager <
    staff). ``on_object``: it names one of the association's objects (another association's people: 404).
    ``query``: the address's query string (a copy's ``?from=``). ``writes``: a POST that changes something;
    one that only shows (a message's preview) answers 200 and writes nothing, like a GET."""

    id: str
    url_name: str
    method: str
    needs: str
    on_object: bool
    args: Callable[[World], tuple] = field(default=lambda world: ())
    data: Callable[[World], dict] = field(default=lambda world: {})
    query: Callable[[World], str] = field(default=lambda world: "")
    writes: bool = True

    def path(self, world: World) -> str:
        return reverse(self.url_name, args=self.args(world)) + self.query(world)


GET, POST = "GET", "POST"
QUESTION = {"id": "5a1e7c0d", "kind": "text", "label": "Régime alimentaire", "choices": [], "required": False}
ACTIONS = [
    # One event of the association.
    Action("event-page", "staff_event", GET, "editor", True, lambda w: (w.draft,)),
    Action("edit-draft-form", "staff_event_edit", GET, "editor", True, lambda w: (w.draft,)),
    Action("edit-draft", "staff_event_edit", POST, "editor", True, lambda w: (w.draft,),
           lambda w: event_fields(w.own, "Titre changé")),
    Action("edit-declined", "staff_event_edit", POST, "editor", True, lambda w: (w.declined,),
           lambda w: event_fields(w.own, "Titre corrigé")),
    Action("edit-published-form", "staff_event_edit", GET, "manager", True, lambda w: (w.approved,)),
    Action("edit-published", "staff_event_edit", POST, "manager", True, lambda w: (w.approved,),
           lambda w: published_fields()),
    Action("submit", "staff_event_submit", POST, "editor", True, lambda w: (w.draft,)),
    Action("approve", "staff_event_approve", POST, "staff", True, lambda w: (w.submitted,)),
    Action("decline-form", "staff_event_decline", GET, "staff", True, lambda w: (w.submitted,)),
    Action("decline", "staff_event_decline", POST, "staff", True, lambda w: (w.submitted,),
           lambda w: {"reason": "Non"}),
    Action("cancel-form", "staff_event_cancel", GET, "manager", True, lambda w: (w.approved,)),
    Action("cancel", "staff_event_cancel", POST, "manager", True, lambda w: (w.approved,),
           lambda w: {"reason": "Pluie"}),
    Action("delete-form", "staff_event_delete", GET, "editor", True, lambda w: (w.draft,)),
    Action("delete", "staff_event_delete", POST, "editor", True, lambda w: (w.draft,)),
    Action("attendees", "staff_attendees", GET, "editor", True, lambda w: (w.approved,)),
    Action("attendee-add", "staff_attendees", POST, "manager", True, lambda w: (w.approved,),
           lambda w: {"email": f"newcomer{w.tag}@etu.test"}),
    Action("attendees-csv", "staff_attendees_csv", GET, "editor", True, lambda w: (w.approved,)),
    Action("statistics", "staff_event_statistics", GET, "manager", True, lambda w: (w.approved,)),
    Action("attendee-remove-form", "staff_attendee_remove", GET, "manager", True,
           lambda w: (w.approved, w.registration)),
    Action("attendee-remove", "staff_attendee_remove", POST, "manager", True,
           lambda w: (w.approved, w.registration)),
    Action("questions", "staff_event_questions", GET, "editor", True, lambda w: (w.approved,)),
    Action("question-add", "staff_event_questions", POST, "manager", True, lambda w: (w.approved,),
           lambda w: {"action": "add", "kind": "text", "label": "Régime alimentaire"}),
    Action("question-add-draft", "staff_event_questions", POST, "editor", True, lambda w: (w.draft,),
           lambda w: {"action": "add", "kind": "yes_no", "label": "Un +1 ?"}),
    Action("answers-deadline", "staff_event_questions", POST, "manager", True, lambda w: (w.approved,),
           lambda w: {"action": "deadline", "answers_close_at": "2030-01-01T10:00"}),
    Action("question-remove-form", "staff_question_remove", GET, "manager", True,
           lambda w: (w.approved, QUESTION["id"])),
    Action("question-remove", "staff_question_remove", POST, "manager", True, lambda w: (w.approved, QUESTION["id"])),
    Action("message-form", "staff_attendees_message", GET, "manager", True, lambda w: (w.approved,)),
    Action("message-preview", "staff_attendees_message", POST, "manager", True, lambda w: (w.approved,),
           lambda w: {"audience": "both", "subject": "Rendez-vous", "body": "À 19 h devant le Foyer."},
           writes=False),
    Action("message-send", "staff_attendees_message", POST, "manager", True, lambda w: (w.approved,),
           lambda w: {"audience": "both", "subject": "Rendez-vous", "body": "À 19 h devant le Foyer.",
                      "send_key": "0" * 32, "action": "send"}),
    Action("check-in", "staff_checkin", GET, "editor", True, lambda w: (w.approved,)),
    Action("check-in-mark", "staff_checkin_mark", POST, "editor", True, lambda w: (w.approved, w.registration)),
    Action("check-in-scan", "staff_checkin_scan", POST, "editor", True, lambda w: (w.approved,),
           lambda w: {"code": ticket_code(event_id=w.approved, registration_id=w.registration)}),
    Action("poster-form-draft", "staff_event_poster", GET, "editor", True, lambda w: (w.draft,)),
    Action("poster-draft", "staff_event_poster", POST, "editor", True, lambda w: (w.draft,),
           lambda w: {"image": a_photo(), "alt": "L'affiche"}),
    Action("poster-form-published", "staff_event_poster", GET, "manager", True, lambda w: (w.approved,)),
    Action("poster-published", "staff_event_poster", POST, "manager", True, lambda w: (w.approved,),
           lambda w: {"image": a_photo(), "alt": "L'affiche"}),
    # The association itself.
    Action("association-edit-form", "staff_association_edit", GET, "manager", True, lambda w: (w.own,)),
    Action("association-edit", "staff_association_edit", POST, "manager", True, lambda w: (w.own,),
           lambda w: {"name": "BDE renommé", "slug": f"bde{w.tag}", "description": ""}),
    Action("members", "staff_members", GET, "manager", True, lambda w: (w.own,)),
    Action("logo-form", "staff_association_logo", GET, "manager", True, lambda w: (w.own,)),
    Action("logo", "staff_association_logo", POST, "manager", True, lambda w: (w.own,),
           lambda w: {"image": a_photo(), "alt": "Le logo"}),
    Action("member-role-set", "staff_members", POST, "manager", True, lambda w: (w.own,),
           lambda w: {"email": f"newcomer{w.tag}@etu.test", "role": "editor"}),
    # Site-wide pages.
    Action("dashboard", "staff_dashboard", GET, "editor", False),
    Action("events", "staff_events", GET, "editor", False),
    Action("event-new-form", "staff_event_new", GET, "editor", False),
    Action("event-copy-form", "staff_event_new", GET, "editor", True, query=lambda w: f"?from={w.approved}"),
    Action("event-new", "staff_event_new", POST, "editor", False, data=lambda w: event_fields(w.own)),
    Action("series-new-form", "staff_series_new", GET, "editor", False),
    Action("series-new", "staff_series_new", POST, "editor", False, data=lambda w: series_fields(w.own)),
    Action("associations", "staff_associations", GET, "editor", False),
    Action("queue", "staff_queue", GET, "staff", False),
    Action("association-new-form", "staff_association_new", GET, "staff", False),
    Action("association-new", "staff_association_new", POST, "staff", False,
           data=lambda w: {"name": "Club échecs", "slug": f"echecs{w.tag}", "description": ""}),
    Action("users", "staff_users", GET, "staff", False),
    Action("user-flags", "staff_user_flags", POST, "staff", False, lambda w: (w.users["student"],),
           lambda w: {"is_staff": "on", "is_active": "on"}),
    Action("audit", "staff_audit", GET, "staff", False),
    Action("outbox", "staff_outbox", GET, "staff", False),
    Action("outbox-retry", "staff_outbox_retry", POST, "staff", False, lambda w: (w.failed_message,)),
]

LEVEL = {"editor": 1, "manager": 2, "staff": 3}  # the association's editor and manager; the staff


def refusal(role: str, action: Action) -> str | int | None:
    """What ``role`` gets for ``action``: "login", 403, 404, or None when the role may do it."""
    if role == "anonymous":
        return "login"
    if role == "student":
        return 403
    if role in ("editor_other", "manager_other"):
        if action.on_object:
            return 404
        return 403 if action.needs == "staff" else None
    return 403 if LEVEL[role] < LEVEL[action.needs] else None


REFUSING_ROLES = ("anonymous", "student", "editor_other", "manager_other", "editor", "manager")
ALLOWED_ROLES = ("editor", "manager", "staff")


async def snapshot() -> dict[str, list]:
    """Every row of the tables a management action may change (log-in times aside)."""
    tables = {"events": Event, "registrations": Registration, "memberships": Membership,
              "audit_log": AuditEntry, "associations": Association, "outbox": OutboxMessage}
    async with db.read_session() as session:
        state = {name: (await session.execute(select(*model.__table__.c).order_by(model.id))).all()
                 for name, model in tables.items()}
        user_columns = [column for column in User.__table__.c if column.name != "last_login_at"]
        state["users"] = (await session.execute(select(*user_columns).order_by(User.id))).all()
    return state


async def client_as(world: World, role: str) -> AsyncClient:
    client = AsyncClient(raise_request_exception=False)  # a 500 is one more wrong answer in the report
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    if role != "anonymous":
        await support.login(client, world.users[role])
    return client


async def send(client: AsyncClient, action: Action, world: World):
    path = action.path(world)
    if action.method == GET:
        return await client.get(path)
    return await client.post(path, action.data(world))


# One test per URL and method, which walks every role and reports every wrong answer at once (a test per
# role and URL would spend most of its time emptying the tables between tests).

async def wrong_refusals(action: Action) -> list[str]:
    world = await world_create()
    wrong = []
    before = await snapshot()
    for role in REFUSING_ROLES:
        expected = refusal(role, action)
        if expected is None:
            continue
        response = await send(await client_as(world, role), action, world)
        if expected == "login":
            login = f"/account/login/?{urlencode({'next': action.path(world)})}"
            if response.status_code != 302 or response["Location"] != login:
                wrong.append(f"{role}: {response.status_code} {response.get('Location', '')}, not the log-in page")
        elif response.status_code != expected:
            wrong.append(f"{role}: {response.status_code}, not {expected}")
        elif any(title in response.text for title in SECRET_TITLES):
            wrong.append(f"{role}: the refusal shows an event's title")
        if await snapshot() != before:
            wrong.append(f"{role}: the database changed")
    return wrong


async def wrong_permissions(action: Action) -> list[str]:
    wrong = []
    for role in ALLOWED_ROLES:
        if refusal(role, action) is not None:
            continue
        world = await world_create(tag=role)  # each role acts on objects of its own
        before = await snapshot()
        response = await send(await client_as(world, role), action, world)
        after = await snapshot()
        if action.method == GET or not action.writes:
            if response.status_code != 200:
                wrong.append(f"{role}: {response.status_code}, not 200")
            elif after != before:
                wrong.append(f"{role}: a {action.method} that only shows changed the database")
            elif action.id == "attendees-csv" and not response["Content-Type"].startswith("text/csv"):
                wrong.append(f"{role}: {response['Content-Type']}, not a CSV file")
        elif response.status_code != 302 or response["Location"].startswith("/account/login/"):
            wrong.append(f"{role}: {response.status_code} {response.get('Location', '')}, not a redirect after "
                         "the change")
        elif after == before:
            wrong.append(f"{role}: nothing changed")
        else:
            # Every change is in the audit log, by the person who made it.
            new_entries = after["audit_log"][len(before["audit_log"]):]
            if not new_entries or {entry.actor_id for entry in new_entries} != {world.users[role]}:
                wrong.append(f"{role}: the audit log has {[(e.action, e.actor_id) for e in new_entries]}")
    return wrong


@pytest.mark.parametrize("action", [pytest.param(action, id=f"{action.id}-{action.method}") for action in ACTIONS])
async def test_only_the_right_roles_can(action):
    refused, allowed = await wrong_refusals(action), await wrong_permissions(action)
    assert not refused and not allowed, {"refused wrongly": refused, "allowed wrongly": allowed}


# Another association's objects through this association's URLs, and this association's objects moved away.

@pytest.mark.parametrize(("method", "url_name", "args"), [
    (GET, "staff_attendee_remove", lambda w: (w.approved, w.other_registration)),
    (POST, "staff_attendee_remove", lambda w: (w.approved, w.other_registration)),
    (POST, "staff_checkin_mark", lambda w: (w.approved, w.other_registration)),
    (GET, "staff_attendee_remove", lambda w: (w.other_approved, w.registration)),
    (POST, "staff_checkin_mark", lambda w: (w.other_approved, w.registration)),
], ids=["remove-form", "remove", "check-in", "remove-form-swapped", "check-in-swapped"])
async def test_a_registration_of_another_associations_event_is_404_whatever_the_url(method, url_name, args):
    world = await world_create()
    client = await client_as(world, "manager")
    before = await snapshot()
    path = reverse(url_name, args=args(world))
    response = await (client.get(path) if method == GET else client.post(path))
    assert response.status_code == 404
    assert await snapshot() == before


@pytest.mark.parametrize("role", ["editor", "manager"])
async def test_an_event_cannot_be_moved_or_created_into_another_association(role):
    world = await world_create()
    client = await client_as(world, role)
    before = await snapshot()
    moved = await client.post(reverse("staff_event_edit", args=(world.draft,)), event_fields(world.other))
    assert moved.status_code in (400, 403) and "Select a valid choice." in moved.text
    created = await client.post(reverse("staff_event_new"), event_fields(world.other))
    assert created.status_code in (400, 403)
    series = await client.post(reverse("staff_series_new"), series_fields(world.other))
    assert series.status_code in (400, 403)
    assert await snapshot() == before


@pytest.mark.parametrize("role", ["editor_other", "manager_other"])
async def test_another_associations_people_see_none_of_this_associations_events_in_lists(role):
    world = await world_create()
    client = await client_as(world, role)
    for path in (reverse("staff_events"), f"{reverse('staff_events')}?association={world.own}",
                 f"{reverse('staff_events')}?q=confidentiel", reverse("staff_dashboard"),
                 reverse("staff_associations")):
        response = await client.get(path)
        assert response.status_code == 200
        assert not any(title in response.text for title in SECRET_TITLES), path
    for slug in ("draft", "submitted", "declined"):
        assert (await client.get(reverse("event_detail", args=(slug,)))).status_code == 404


async def test_unknown_ids_are_404_even_for_staff():
    world = await world_create()
    client = await client_as(world, "staff")
    before = await snapshot()
    for method, url_name, args in [
        (GET, "staff_event", (999_999,)), (POST, "staff_event_approve", (999_999,)),
        (GET, "staff_event_edit", (999_999,)), (POST, "staff_event_delete", (999_999,)),
        (GET, "staff_attendees", (999_999,)), (GET, "staff_event_statistics", (999_999,)),
        (GET, "staff_attendee_remove", (world.approved, 999_999)),
        (POST, "staff_checkin_mark", (world.approved, 999_999)), (GET, "staff_members", (999_999,)),
        (GET, "staff_event_questions", (999_999,)), (GET, "staff_attendees_message", (999_999,)),
        (POST, "staff_checkin_scan", (999_999,)),
        (GET, "staff_association_edit", (999_999,)), (POST, "staff_user_flags", (999_999,)),
    ]:
        path = reverse(url_name, args=args)
        response = await (client.get(path) if method == GET else client.post(path, {"is_active": "on"}))
        assert response.status_code == 404, path
    assert await snapshot() == before


@pytest.mark.parametrize("url_name", ["staff_event_submit", "staff_event_approve", "staff_checkin_mark",
                                      "staff_user_flags"])
async def test_actions_that_change_something_refuse_get(url_name):
    world = await world_create()
    client = await client_as(world, "staff")
    before = await snapshot()
    args = {"staff_checkin_mark": (world.approved, world.registration),
            "staff_user_flags": (world.users["student"],)}.get(url_name, (world.submitted,))
    assert (await client.get(reverse(url_name, args=args))).status_code == 405
    assert await snapshot() == before
