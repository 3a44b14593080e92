"""Security against hostile users: stored XSS everywhere user text shows, CSRF on every POST, oversized
bodies, feeds and private events that cannot be guessed or enumerated, log-in answers that do not tell
whether an account exists, and the security headers and cookie flags of every kind of response (with the
production settings too). The access-control matrix of the management area is tests/staff/test_staff_permissions.py."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from django.conf import settings
from django.test import AsyncClient
from django.utils.crypto import get_random_string
from markupsafe import escape
from sqlalchemy import select

from events.accounts import auth
from events.accounts import services as account_services
from events.models import EventStatus, Registration, RegistrationStatus, Role, User, utcnow
from events.notifications import mailer
from events.registration import services as registration_services
from events.rules.permissions import Actor
from events.staff import people as staff_people
from events.staff import services as staff_services
from hyperion import db
from tests import factories, support
from tests.fuzz import db_snapshot

PARIS = ZoneInfo("Europe/Paris")

# Markup, script and template syntax as a hostile student or association would type it.
EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(1)>{{7*7}}{% debug %}'
# What must never reach a page as markup (each is how EVIL or the description's tags would appear raw).
RAW_MARKUP = ("<script>alert", "<img src=x", '"><img', "<svg onload", "<b>bold</b>", "<iframe")


async def role_give(user_id: int, association_id: int, role: Role) -> None:
    await factories.member(association_id=association_id, user_id=user_id, role=role)


async def client_for(user_id: int | None = None, **options) -> AsyncClient:
    client = AsyncClient(**options)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    if user_id is not None:
        await support.login(client, user_id)
    return client


def masked(html: str, *secrets: str) -> str:
    """The page without what legitimately differs between two answers: the per-render CSRF token and the
    values the visitor typed or requested (echoed in a form or in the language switch's "next")."""
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken" value=""', html)
    for secret in secrets:
        html = html.replace(secret, "…")
    return html


# Stored XSS.

@dataclass
class Hostile:
    association: int
    event: int
    event_slug: str
    submitted: int
    draft: int
    staff: int
    eve: int
    registration: int
    starts_at: datetime
    eve_feed_token: str


async def hostile_world() -> Hostile:
    """Markup in every text a user controls: association name and description, event title, description and
    place, display names (with spreadsheet formulas too), a decline reason, audit entries."""
    association = await factories.association(slug="evil", name=f"BDE {EVIL}")
    staff = await factories.user(email="staff@etu.test", display_name="Sam Staff", is_staff=True)
    eve = await factories.user(email="eve@etu.test", display_name=f"Eve {EVIL}")
    formula = await factories.user(email="formula@etu.test", display_name='=HYPERLINK("https://evil.example")')
    at_sign = await factories.user(email="at@etu.test", display_name="@SUM(1+1)<script>alert(2)</script>")
    await role_give(eve, association, Role.MANAGER)
    starts_at = (utcnow() + timedelta(days=7)).astimezone(PARIS).replace(hour=19, minute=0, second=0, microsecond=0)
    description = f"Ligne 1 <b>bold</b>\n{EVIL}\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:Injected"
    event = await factories.event(association_id=association, slug="evil-gala", title=f"Gala {EVIL}",
                                       starts_at=starts_at, location=f"<svg onload=alert(3)> {EVIL}",
                                       description=description)
    # Same evening: registering for it shows the overlap page, which lists the other event's title.
    await factories.event(association_id=association, slug="evil-after", title=f"After {EVIL}",
                               starts_at=starts_at + timedelta(hours=1), description=EVIL)
    submitted = await factories.event(association_id=association, slug="evil-submitted",
                                           title=f"Pending {EVIL}", status=EventStatus.SUBMITTED,
                                           submitted_at=utcnow(), starts_at=starts_at + timedelta(days=1))
    draft = await factories.event(association_id=association, slug="evil-draft", title=f"Draft {EVIL}",
                                       status=EventStatus.DRAFT, starts_at=starts_at + timedelta(days=2))
    await factories.event(association_id=association, slug="evil-queued", title=f"Queued {EVIL}",
                               status=EventStatus.SUBMITTED, submitted_at=utcnow(),
                               starts_at=starts_at + timedelta(days=3))
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event, user_id=eve)
    for student in (formula, at_sign):
        await factories.registration(event_id=event, user_id=student)
    async with db.write_session() as session:
        eve_feed = await account_services.feed_token_regenerate(session, user_id=eve)
    async with db.write_session() as session:
        await staff_people.association_save(session, actor=Actor(staff, True), association_id=association,
                                              slug="evil", name=f"BDE {EVIL}", description=f"Desc {EVIL}")
    async with db.write_session() as session:
        await staff_services.event_transition(session, actor=Actor(staff, True), event_id=submitted,
                                              action="decline", reason=f"Reason {EVIL}")
    async with db.read_session() as session:
        registration = (await session.execute(select(Registration.id).where(
            Registration.event_id == event, Registration.user_id == eve))).scalar_one()
    return Hostile(association, event, "evil-gala", submitted, draft, staff, eve, registration, starts_at,
                   eve_feed.token)


def assert_text_not_markup(page: str, where: str) -> None:
    for raw in RAW_MARKUP:
        assert raw not in page, f"{raw!r} unescaped on {where}"


async def test_user_text_is_shown_as_text_on_every_page():
    world = await hostile_world()
    eve = await client_for(world.eve)
    staff = await client_for(world.staff)
    day = world.starts_at.date()
    pages = {
        eve: ["/", f"/events/{world.event_slug}/", "/associations/evil/", f"/calendar/?month={day:%Y-%m}",
              f"/calendar/week/?week={day.isoformat()}", "/me/events/", "/account/", "/?q=Gala",
              "/events/evil-after/", "/manage/", "/manage/associations/", "/manage/events/",
              f"/manage/events/{world.event}/", f"/manage/events/{world.draft}/",
              f"/manage/events/{world.draft}/edit/", f"/manage/events/{world.draft}/delete/",
              f"/manage/associations/{world.association}/edit/", f"/manage/associations/{world.association}/members/"],
        staff: ["/manage/queue/", "/manage/users/", "/manage/audit/", f"/manage/events/{world.event}/attendees/",
                f"/manage/events/{world.event}/checkin/", f"/manage/events/{world.submitted}/",
                f"/manage/events/{world.event}/cancel/", "/manage/audit/?action=association",
                f"/manage/events/{world.event}/attendees/{world.registration}/remove/"],
    }
    shown = str(escape(EVIL))  # the whole hostile text, as text
    for client, paths in pages.items():
        for path in paths:
            response = await client.get(path)
            assert response.status_code == 200, path
            assert_text_not_markup(response.text, path)
            assert shown in response.text, f"no hostile text shown on {path}: the check would prove nothing"
    event_page = (await eve.get(f"/events/{world.event_slug}/")).text
    assert "Gala &lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in event_page
    assert "{{7*7}}{% debug %}" in event_page  # shown as typed: never evaluated by a template engine
    association_page = (await eve.get("/associations/evil/")).text
    assert "Desc &lt;script&gt;" in association_page and "{% debug %}" in association_page
    # The overlap warning lists the other event's title.
    confirm = await eve.post("/events/evil-after/register/")
    assert confirm.status_code == 200 and "After &lt;script&gt;" in confirm.text
    assert_text_not_markup(confirm.text, "register confirmation")


async def test_feeds_carry_user_text_as_text_and_cannot_be_broken():
    world = await hostile_world()
    token = world.eve_feed_token
    client = AsyncClient()
    for path, events in ((f"/events/{world.event_slug}.ics", 1), ("/feeds/events.ics", 2),
                         ("/feeds/associations/evil.ics", 2), ("/feeds/categories/party.ics", 2),
                         (f"/feeds/me/{token}.ics", 1)):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith("text/calendar") and response["X-Content-Type-Options"] == "nosniff"
        calendar = icalendar.Calendar.from_ical(response.content)
        vevents = list(calendar.walk("VEVENT"))
        assert len(vevents) == events, path  # the description's "END:VEVENT" injected nothing
        gala = next(vevent for vevent in vevents if str(vevent["SUMMARY"]).startswith("Gala"))
        assert str(gala["SUMMARY"]) == f"Gala {EVIL}", path
        assert "SUMMARY:Injected" in str(gala["DESCRIPTION"]), path  # kept as text inside the description
    association_feed = icalendar.Calendar.from_ical((await client.get("/feeds/associations/evil.ics")).content)
    assert str(association_feed["X-WR-CALNAME"]).endswith(f"BDE {EVIL}")


async def test_csv_export_neutralises_formulas_and_is_never_rendered_as_a_page():
    world = await hostile_world()
    staff = await client_for(world.staff)
    response = await staff.get(f"/manage/events/{world.event}/attendees.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))], cells
    names = {row[0] for row in rows[1:]}
    assert names == {f"Eve {EVIL}", "'=HYPERLINK(\"https://evil.example\")", "'@SUM(1+1)<script>alert(2)</script>"}


class CapturingTransport:
    def __init__(self) -> None:
        self.messages = []

    async def send(self, email, outbox_id: int) -> None:
        self.messages.append(email)


async def test_user_text_in_emails_is_text_in_the_html_part_and_never_a_header():
    """tests/notifications/test_notifications.py checks titles, display names and reasons; here the place and the
    association's name too, in a confirmation and a cancellation."""
    world = await hostile_world()
    async with db.write_session() as session:
        await staff_services.event_transition(session, actor=Actor(world.staff, True), event_id=world.event,
                                              action="cancel", reason=f"Cancel {EVIL}")
    transport = CapturingTransport()
    await mailer.send_all_due(transport)
    sent = [message for message in transport.messages if "eve@etu.test" in message["To"]]
    assert len(sent) >= 2  # registration confirmed, event cancelled
    for message in sent:
        html = message.get_body(preferencelist=("html",)).get_content()
        assert_text_not_markup(html, message["Subject"])
        assert "BDE &lt;script&gt;" in html
        if "Gala" in message["Subject"]:
            assert "&lt;svg onload=alert(3)&gt;" in html
        assert "\n" not in message["Subject"] and "\n" not in message["To"]


# CSRF.

async def post_routes() -> tuple[list[tuple[str, dict]], int]:
    """Every POST of the site, with data that the staff member may send; and the staff member's id."""
    association = await factories.association(slug="bde", name="BDE")
    staff = await factories.user(email="staff@etu.test", display_name="Sam Staff", is_staff=True,
                                      password_hash=await auth.password_hash("correct-horse-battery"))
    student = await factories.user(email="student@etu.test", display_name="Stella")
    await role_give(student, association, Role.MEMBER)
    published = await factories.event(association_id=association, slug="gala")
    draft = await factories.event(association_id=association, slug="draft", status=EventStatus.DRAFT)
    submitted = await factories.event(association_id=association, slug="submitted",
                                           status=EventStatus.SUBMITTED, submitted_at=utcnow())
    registration = await factories.registration_id(event_id=published, user_id=student)
    event_form = {"title": "Soirée", "association_id": str(association), "category": "party", "location": "",
                  "starts_at": "2030-05-01T19:00", "ends_at": "2030-05-01T22:00", "capacity": "10",
                  "description": ""}
    routes = [
        ("/account/login/", {"email": "staff@etu.test", "password": "correct-horse-battery"}),
        ("/account/signup/", {"email": "new@etu.test", "display_name": "New", "password1": "correct-horse-99",
                              "password2": "correct-horse-99"}),
        ("/account/password/", {"current_password": "correct-horse-battery", "new_password1": "brand-new-secret-1",
                                "new_password2": "brand-new-secret-1"}),
        ("/account/feed/", {"action": "regenerate"}), ("/account/notifications/", {"registration": ""}),
        ("/language/", {"language": "fr"}), ("/events/gala/register/", {"confirm_overlap": "yes"}),
        ("/events/gala/leave/", {}), ("/manage/events/new/", event_form),
        ("/manage/events/series/", {**event_form, "every_weeks": "1", "until": "2030-05-20"}),
        (f"/manage/events/{draft}/edit/", event_form), (f"/manage/events/{draft}/submit/", {}),
        (f"/manage/events/{submitted}/approve/", {}), (f"/manage/events/{submitted}/decline/", {"reason": "Non"}),
        (f"/manage/events/{published}/cancel/", {"reason": "Pluie"}), (f"/manage/events/{draft}/delete/", {}),
        (f"/manage/events/{published}/attendees/", {"email": "staff@etu.test"}),
        (f"/manage/events/{published}/attendees/{registration}/remove/", {}),
        (f"/manage/events/{published}/checkin/{registration}/", {"present": "yes"}),
        ("/manage/associations/new/", {"name": "Club", "slug": "club", "description": ""}),
        (f"/manage/associations/{association}/edit/", {"name": "BDE 2", "slug": "bde", "description": ""}),
        (f"/manage/associations/{association}/members/", {"email": "student@etu.test", "role": "editor"}),
        (f"/manage/users/{student}/", {"is_active": "on"}), ("/manage/outbox/1/retry/", {}),
        ("/account/logout/", {}),
    ]
    return routes, staff


FORGERIES = {
    "no token": lambda secret: ({settings.CSRF_COOKIE_NAME: secret}, {}, {}),
    "wrong token": lambda secret: ({settings.CSRF_COOKIE_NAME: secret},
                                   {"csrfmiddlewaretoken": get_random_string(32)}, {}),
    "token without its cookie": lambda secret: ({}, {"csrfmiddlewaretoken": secret}, {}),
    "right token from another site": lambda secret: ({settings.CSRF_COOKIE_NAME: secret},
                                                     {"csrfmiddlewaretoken": secret},
                                                     {"Origin": "https://evil.example"}),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
async def test_every_post_with_a_missing_or_wrong_csrf_token_is_refused_and_changes_nothing(forgery):
    routes, staff_id = await post_routes()
    assert len(routes) == 25  # every POST route of events/urls.py
    client = await client_for(staff_id, enforce_csrf_checks=True)
    secret = get_random_string(32)
    cookies, token, headers = FORGERIES[forgery](secret)
    for name, value in cookies.items():
        client.cookies[name] = value
    before = await db_snapshot()
    for path, data in routes:
        response = await client.post(path, {**data, **token}, headers=headers)
        assert response.status_code == 403, (forgery, path, response.status_code)
        assert "Form expired" in response.text, (forgery, path)
    assert await db_snapshot() == before


async def test_the_same_posts_with_the_right_token_are_not_refused_so_the_403s_were_csrf():
    routes, staff_id = await post_routes()
    client = await client_for(staff_id, enforce_csrf_checks=True)
    secret = get_random_string(32)
    client.cookies[settings.CSRF_COOKIE_NAME] = secret
    for path, data in routes:
        if path in ("/account/login/", "/account/signup/"):
            continue  # a logged-in user is sent away from these before the form is read
        response = await client.post(path, {**data, "csrfmiddlewaretoken": secret})
        assert response.status_code != 403 and "Form expired" not in response.text, path


# Oversized bodies and uploads, on the real server.

@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    env = {"DATABASE_URL": database_url, "CSRF_COOKIE_SECURE": "false", "SESSION_COOKIE_SECURE": "false"}
    with support.uvicorn_server(tmp_path_factory.mktemp("security"), env=env) as running:
        yield running


async def test_oversized_bodies_too_many_fields_and_uploads_are_refused_without_a_server_error(server):
    await factories.user(email="bob@etu.test", display_name="Bob")
    secret = get_random_string(32)
    before = await db_snapshot()
    async with httpx.AsyncClient(base_url=server.base_url, cookies={settings.CSRF_COOKIE_NAME: secret},
                                 timeout=60) as client:
        big_form = await client.post("/account/login/", data={
            "csrfmiddlewaretoken": secret, "email": "bob@etu.test", "password": "x" * (2 * 1024 * 1024)})
        assert big_form.status_code in (400, 413), big_form.status_code
        many_fields = await client.post("/account/signup/", data={
            "csrfmiddlewaretoken": secret, **{f"field{number}": "x" for number in range(2000)}})
        assert many_fields.status_code in (400, 413), many_fields.status_code
        upload = await client.post("/account/signup/", data={"csrfmiddlewaretoken": secret},
                                   files={"avatar": ("big.bin", b"\0" * (3 * 1024 * 1024))})
        assert 400 <= upload.status_code < 500, upload.status_code
        many_files = await client.post("/account/login/", data={"csrfmiddlewaretoken": secret},
                                       files=[("file", (f"f{number}.txt", b"x")) for number in range(150)])
        assert many_files.status_code in (400, 413), many_files.status_code
        try:
            huge = await client.post("/account/login/", content=b"a=" + b"x" * (20 * 1024 * 1024), headers={
                "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": secret})
        except httpx.TransportError:
            pass  # refused by closing the connection mid-upload: also a refusal
        else:
            assert huge.status_code in (400, 413), huge.status_code
    assert await db_snapshot() == before


async def test_a_body_announced_larger_than_the_limit_is_refused_without_being_read_to_the_end(server):
    """A client announcing 50 MiB gets its refusal (or a closed connection) long before it has sent it all:
    the server does not wait for, and spool to disk, a body it will refuse anyway."""
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    chunk, sent, answer = b"x" * (1024 * 1024), 0, b""
    try:
        writer.write(b"POST /account/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 52428800\r\n\r\n")
        while sent < 50 and not answer:
            try:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), timeout=5)
            except (ConnectionError, TimeoutError):
                break  # the server stopped reading: refused
            sent += 1
            try:
                answer = await asyncio.wait_for(reader.read(100), timeout=0.05)
            except TimeoutError:
                continue
        if not answer:
            try:
                answer = await asyncio.wait_for(reader.read(100), timeout=5) or b"(closed)"
            except (ConnectionError, TimeoutError):
                answer = b"(closed)"
    finally:
        writer.close()
    assert sent < 50, f"the server read all {sent} MiB before answering {answer[:40]!r}"
    assert answer.startswith((b"HTTP/1.1 413", b"HTTP/1.1 400", b"(closed)")), answer[:40]


# Feeds, private events and accounts cannot be guessed or enumerated.

def feed_token_shown(page: str) -> str:
    """The token of the feed address an account page shows (only the answer that made it shows one)."""
    return re.search(r'value="[^"]*/feeds/me/([^"/]+)\.ics"', page).group(1)


async def stored_feed_hash(student: int) -> str | None:
    async with db.read_session() as session:
        return (await session.execute(select(User.feed_token_hash).where(User.id == student))).scalar_one()


async def test_personal_feed_token_is_random_long_revocable_and_unknown_looks_revoked():
    association = await factories.association()
    await factories.event(association_id=association)
    students = [await factories.user(email=f"s{number}@etu.test", display_name=f"S{number}")
                for number in range(3)]
    tokens = set()
    for student in students:
        client = await client_for(student)
        for _ in range(5):
            made = await client.post("/account/feed/", {"action": "regenerate"})
            assert made.status_code == 200 and "no-store" in made["Cache-Control"]
            token = feed_token_shown(made.content.decode())
            tokens.add(token)
            assert set(token) <= set(string.ascii_letters + string.digits + "-_")
            assert len(token) * 6 >= 128, token  # base64url: 6 bits a character
            assert str(student) not in (token, token.lstrip("0"))
            # The table holds the token's SHA-256 only, and the account page never shows the address again.
            assert await stored_feed_hash(student) == hashlib.sha256(token.encode()).hexdigest()
            assert token not in (await client.get("/account/")).content.decode()
    assert len(tokens) == 15  # never repeated, never derived from the account
    visitor = AsyncClient()
    student = students[0]
    client = await client_for(student)
    current = feed_token_shown((await client.post("/account/feed/", {"action": "regenerate"})).content.decode())
    assert (await visitor.get(f"/feeds/me/{current}.ics")).status_code == 200
    # A stolen table gives no feed: what is stored does not open one.
    assert (await visitor.get(f"/feeds/me/{await stored_feed_hash(student)}.ics")).status_code == 404
    renewed = feed_token_shown((await client.post("/account/feed/", {"action": "regenerate"})).content.decode())
    regenerated = await visitor.get(f"/feeds/me/{current}.ics")  # the old address is dead
    assert (await visitor.get(f"/feeds/me/{renewed}.ics")).status_code == 200
    await client.post("/account/feed/", {"action": "revoke"})
    revoked = await visitor.get(f"/feeds/me/{renewed}.ics")
    unknown_token = get_random_string(len(renewed))
    unknown = await visitor.get(f"/feeds/me/{unknown_token}.ics")
    assert regenerated.status_code == revoked.status_code == unknown.status_code == 404
    assert (masked(regenerated.content.decode(), current) == masked(revoked.content.decode(), renewed)
            == masked(unknown.content.decode(), unknown_token))
    assert (await visitor.get(f"/feeds/me/{student}.ics")).status_code == 404


@pytest.mark.parametrize("status", [EventStatus.DRAFT, EventStatus.SUBMITTED, EventStatus.DECLINED])
@pytest.mark.parametrize("who", ["visitor", "student"])
async def test_a_private_event_and_a_missing_one_give_the_same_answer(status, who):
    association = await factories.association(slug="bde", name="BDE")
    await factories.event(association_id=association, slug="secret-party", title="Secret party",
                               status=status)
    student = await factories.user()
    client = await client_for(student if who == "student" else None)
    for template, method in (("/events/{}/", "get"), ("/events/{}.ics", "get"), ("/events/{}/register/", "post"),
                             ("/events/{}/leave/", "post")):
        private = await getattr(client, method)(template.format("secret-party"))
        missing = await getattr(client, method)(template.format("nothing-here"))
        assert private.status_code == missing.status_code, template
        assert private.status_code in (302, 404), template  # a visitor's POST goes to the log-in page first
        assert masked(private.content.decode(), "secret-party") == masked(missing.content.decode(), "nothing-here")
        assert masked(private.get("Location", ""), "secret-party") == masked(missing.get("Location", ""),
                                                                              "nothing-here")
    for path in ("/", "/associations/bde/", "/feeds/events.ics", "/feeds/associations/bde.ics", "/calendar/"):
        assert "Secret party" not in (await client.get(path)).text, path


async def test_login_answers_alike_for_an_unknown_email_a_wrong_password_and_a_disabled_account():
    """Sign-up does tell that an address is taken (tests/accounts/test_views_account.py): the usual trade-off, since
    an account must be creatable; the log-in form, though, never confirms that an account exists."""
    password_hash = await auth.password_hash("correct-horse-battery")
    await factories.user(email="bob@etu.test", display_name="Bob", password_hash=password_hash)
    disabled = await factories.user(email="old@etu.test", display_name="Old", password_hash=password_hash)
    async with db.write_session() as session:  # a staff member disables the account
        await staff_people.user_staff_set(session, actor=factories.SET_UP, user_id=disabled, is_staff=False,
                                          is_active=False)
    answers = {}
    for email, password in (("nobody@etu.test", "wrong-password-1"), ("bob@etu.test", "wrong-password-1"),
                            ("old@etu.test", "correct-horse-battery")):
        client = await client_for()
        response = await client.post("/account/login/", {"email": email, "password": password})
        answers[email] = (response.status_code, masked(response.content.decode(), email),
                          tuple(sorted(response.cookies.keys())))
    assert len(set(answers.values())) == 1, {email: answer[0] for email, answer in answers.items()}
    assert answers["nobody@etu.test"][0] == 400 and "E-mail or password incorrect." in answers["nobody@etu.test"][1]


# Security headers on every kind of response, and cookie flags under the production settings.

def header_problems(response: httpx.Response, *, hsts: bool = False) -> list[str]:
    """What is missing or too weak among the security headers of one response."""
    headers = response.headers
    problems = [f"{name}: {headers.get(name)!r}" for name, value in (
        ("x-content-type-options", "nosniff"), ("referrer-policy", "same-origin"), ("x-frame-options", "DENY"))
        if headers.get(name) != value]
    # Every answer, not only HTML: a static SVG, a feed or a 413 opened on its own is a document too.
    csp = headers.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    scripts = directives.get("script-src", ["(none)"]) + directives.get("default-src", [])
    if ("'unsafe-inline'" in scripts or "(none)" in scripts or directives.get("object-src") != ["'none'"]
            or directives.get("frame-ancestors") != ["'none'"]):
        problems.append(f"content-security-policy: {csp!r}")
    permissions = {part.strip() for part in headers.get("permissions-policy", "").split(",")}
    if not {"camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"} <= permissions:
        problems.append(f"permissions-policy: {headers.get('permissions-policy')!r}")
    if hsts and not headers.get("strict-transport-security", "").startswith("max-age=31536000"):
        problems.append(f"strict-transport-security: {headers.get('strict-transport-security')!r}")
    return problems


def assert_no_header_problems(problems: dict[str, list[str]]) -> None:
    found = {kind: kind_problems for kind, kind_problems in problems.items() if kind_problems}
    assert not found, "security headers missing or weak:\n" + "\n".join(
        f"  {kind}: {'; '.join(kind_problems)}" for kind, kind_problems in found.items())


def cookie_header(**cookies: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


async def test_every_kind_of_response_carries_the_security_headers(server):
    association = await factories.association()
    event_id = await factories.event(association_id=association)
    staff = await factories.user(email="staff@etu.test", display_name="Sam", is_staff=True)
    student = await factories.user(email="student@etu.test", display_name="Stella")
    async with db.write_session() as session:
        staff_token = await auth.session_create(session, user_id=staff)
    async with db.write_session() as session:
        student_token = await auth.session_create(session, user_id=student)
    secret = get_random_string(32)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        kinds = {
            "HTML page": await client.get("/"),
            "stored visitors' page": await client.get("/"),  # the second visit is answered from memory
            "404 page": await client.get("/no-such-page/"),
            "403 page": await client.get("/manage/", headers=cookie_header(hyperion_session=student_token)),
            "CSRF failure": await client.post("/account/login/", data={"email": "a@b.fr"}),
            "form error (400)": await client.post("/account/login/", data={"csrfmiddlewaretoken": secret},
                                                  headers=cookie_header(csrftoken=secret)),
            "405": await client.get("/account/logout/"),
            "redirect": await client.get("/me/events/"),
            "feed .ics": await client.get("/feeds/events.ics"),
            "feed 304": await client.get("/feeds/events.ics", headers={"If-None-Match": "*"}),
            "CSV export": await client.get(f"/manage/events/{event_id}/attendees.csv",
                                           headers=cookie_header(hyperion_session=staff_token)),
            "static file": await client.get("/static/css/site.css"),
            "static 404": await client.get("/static/no-such-file.css"),
            "body too large (413)": await client.post("/account/login/", content=b"x" * (3 * 1024 * 1024),
                                                      headers={"Content-Type": "application/octet-stream"}),
        }
    expected = {"HTML page": 200, "stored visitors' page": 200, "404 page": 404, "403 page": 403, "CSRF failure": 403,
                "form error (400)": 400,
                "405": 405, "redirect": 302, "feed .ics": 200, "feed 304": 304, "CSV export": 200,
                "static file": 200, "static 404": 404, "body too large (413)": 413}
    assert {kind: response.status_code for kind, response in kinds.items()} == expected
    problems = {kind: header_problems(response) for kind, response in kinds.items()}
    assert_no_header_problems(problems)


# The site's own settings module, as deployed behind a TLS-terminating proxy.
PRODUCTION = {"DJANGO_SETTINGS_MODULE": "hyperion.settings", "DEBUG": "false",
              "SECRET_KEY": "production-like-" + "k" * 60, "ALLOWED_HOSTS": "127.0.0.1", "SECURE_PROXY_SSL": "true"}


def set_cookies(response: httpx.Response) -> dict[str, dict]:
    cookies = {}
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            if not morsel.value:
                continue  # a deletion (empty value, already expired) carries nothing to protect
            cookies[name] = {"secure": bool(morsel["secure"]), "httponly": bool(morsel["httponly"]),
                             "samesite": morsel["samesite"], "value": morsel.value}
    return cookies


@pytest.fixture(scope="module")
def production_server(database_url, tmp_path_factory):
    env = {**PRODUCTION, "DATABASE_URL": database_url}
    with support.uvicorn_server(tmp_path_factory.mktemp("production"), env=env) as running:
        yield running


async def test_production_settings_send_hsts_and_secure_httponly_lax_cookies(production_server):
    base = production_server.base_url
    https = {"X-Forwarded-Proto": "https", "Accept-Language": "en"}
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=https) as client:
        plain = await client.get("/", headers={"X-Forwarded-Proto": "http"})
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
        form = await client.get("/account/signup/")
        assert form.status_code == 200
        csrf_cookie = set_cookies(form)[settings.CSRF_COOKIE_NAME]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        signup = await client.post("/account/signup/", headers={
            "Origin": base.replace("http://", "https://"),
            "Cookie": f"{settings.CSRF_COOKIE_NAME}={csrf_cookie['value']}"}, data={
            "csrfmiddlewaretoken": token, "email": "prod@etu.test", "display_name": "Prod",
            "password1": "correct-horse-battery", "password2": "correct-horse-battery"})
        # Once seen as a 503 on a loaded machine and not reproduced since: the server's log says why, if again.
        assert signup.status_code == 200, (signup.status_code, signup.text[:300], production_server.log()[-4000:])
        login = await client.post("/account/login/", headers={
            "Origin": base.replace("http://", "https://"),
            "Cookie": f"{settings.CSRF_COOKIE_NAME}={csrf_cookie['value']}"}, data={
            "csrfmiddlewaretoken": token, "email": "prod@etu.test", "password": "correct-horse-battery"})
        assert login.status_code == 302, (login.status_code, login.text[:300])
        session_cookies = set_cookies(login)
        language = await client.post("/language/", headers={
            "Origin": base.replace("http://", "https://"),
            "Cookie": f"{settings.CSRF_COOKIE_NAME}={csrf_cookie['value']}"},
            data={"csrfmiddlewaretoken": token, "language": "en"})
        cookies = {settings.CSRF_COOKIE_NAME: csrf_cookie, **session_cookies, **set_cookies(language)}
        assert settings.SESSION_COOKIE_NAME in cookies and settings.LANGUAGE_COOKIE_NAME in cookies
        for name, flags in cookies.items():
            assert flags["secure"] and flags["httponly"] and flags["samesite"] == "Lax", (name, flags)
        kinds = {"redirect to HTTPS": plain, "HTML page": form, "sign-up answer": signup, "log-in redirect": login,
                 "404 page": await client.get("/no-such-page/"),
                 "CSRF failure": await client.post("/account/login/", data={"email": "a@b.fr"}),
                 "feed .ics": await client.get("/feeds/events.ics"),
                 "static file": await client.get("/static/css/site.css"),
                 "body too large (413)": await client.post("/account/login/", content=b"x" * (3 * 1024 * 1024))}
    # HSTS only means something on an HTTPS answer (the redirect itself is plain HTTP).
    problems = {kind: header_problems(response, hsts=kind != "redirect to HTTPS") for kind, response in kinds.items()}
    assert_no_header_problems(problems)


async def test_the_forms_of_a_students_event_page_share_one_working_csrf_token(session):
    """Log-out, language and registration forms: one masked token for the page (masking costs ~45 µs a
    time), and it is accepted with Django's CSRF checks on."""
    from django.test import AsyncClient

    event_id = await factories.event(association_id=await factories.association(), slug="gala")
    user_id = await factories.user()
    client = AsyncClient(enforce_csrf_checks=True)
    await support.login(client, user_id)
    page = (await client.get("/events/gala/")).text
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert len(tokens) == 3 and len(set(tokens)) == 1
    response = await client.post("/events/gala/register/", {"csrfmiddlewaretoken": tokens[0],
                                                            "confirm_overlap": "yes"})
    assert response.status_code == 302
    registered = (await session.execute(select(Registration.status).where(
        Registration.event_id == event_id, Registration.user_id == user_id))).scalar_one()
    assert registered == RegistrationStatus.CONFIRMED


# A 403 is one line in the log; a 500 keeps its traceback.

def request_records(caplog) -> list:
    return [record for record in caplog.records if record.name in ("django.request", "django.security.csrf")]


async def test_a_403_is_logged_in_one_line_without_a_traceback(caplog, monkeypatch):
    student = await factories.user(email="student@etu.test", display_name="Stella")
    client = await client_for(student)
    caplog.clear()
    assert (await client.get("/manage/")).status_code == 403
    forgery = await client_for(student, enforce_csrf_checks=True)
    assert (await forgery.post("/account/feed/", {"action": "revoke"})).status_code == 403
    records = request_records(caplog)
    assert [record.status_code for record in records] == [403, 403], [record.getMessage() for record in records]
    denied, csrf = (record.getMessage() for record in records)
    assert denied == "Forbidden: GET /manage/ 403 (permission denied)", denied
    assert csrf.startswith("Forbidden: POST /account/feed/ 403 (CSRF") and "\n" not in csrf, csrf
    assert all(record.exc_info is None and not record.exc_text for record in records)
    assert "Traceback" not in caplog.text


async def test_a_500_is_still_logged_with_its_traceback(caplog, monkeypatch):
    from events.accounts import queries as account_queries

    async def broken(*args, **kwargs):
        raise RuntimeError("the account query broke")

    student = await factories.user(email="student@etu.test", display_name="Stella")
    client = await client_for(student, raise_request_exception=False)
    monkeypatch.setattr(account_queries, "user_account", broken)
    caplog.clear()
    response = await client.get("/account/")
    assert response.status_code == 500
    assert header_problems(response) == []  # the error page carries the security headers too
    [record] = request_records(caplog)
    assert record.levelname == "ERROR" and record.exc_info is not None
    assert "Traceback" in caplog.text and "the account query broke" in caplog.text
