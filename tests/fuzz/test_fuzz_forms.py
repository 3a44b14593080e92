"""Every form POST of the site, fuzzed: hostile values, wrong types, missing fields, DST traps.

The answer is a form error (400, shown on the page) or another 4xx, never a 5xx, and a refused input leaves
the database exactly as it was. Which inputs are invalid is decided by the site's own form class, run in
this process with the same settings and language; the server then has to agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from django.utils import translation
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select

from events.accounts import auth
from events.accounts.forms import LoginForm, PasswordChangeForm, SignupForm
from events.models import EventStatus, Registration, Role, User, utcnow
from events.outbox import PREFERENCES
from events.rules.lifecycle import PUBLISHED_EDITABLE
from events.staff.forms import EventForm, ReasonForm, SeriesForm
from events.staff.people_forms import AssociationForm, AttendeeAddForm, MemberForm
from hyperion import db
from tests import factories
from tests.fuzz import (
    DST_TRAPS,
    FUZZ,
    FUZZ_MANY_URLS,
    GROWING_EMAIL,
    Visitor,
    changed_tables,
    checkbox,
    dates,
    db_snapshot,
    emails,
    end_busy_server_connections,
    error_shown,
    fuzz_server,
    hostile,
    junk,
    local_datetimes,
    numbers,
    visitor_client,
)

GOOD_PASSWORD = "correct-horse-battery"
NEXT_TRAPS = ("//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil.example", "http:evil.example",
              " //evil.example", "\x00//evil.example", "/%2F/evil.example", "javascript:alert(1)", "/ok/\r\nX-Evil: 1",
              "/account/", "///evil.example", "https:///evil.example", "/\t/evil.example")


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    with fuzz_server(tmp_path_factory.mktemp("fuzz-forms"), database_url) as running:
        yield running


@pytest.fixture
async def browser(server):
    async with visitor_client(server) as client:
        yield Visitor(server, client)
    await end_busy_server_connections()  # after a finding, the next tests still start from clean tables


@dataclass
class Cast:
    bde: int
    bds: int
    staff: int
    manager: int
    student: int
    published: int
    draft: int
    submitted: int


@pytest.fixture
async def cast() -> Cast:
    """Two associations, a staff member, the BDE's manager, a student with a known password, and a published,
    a draft and a submitted event of the BDE."""
    bde = await factories.association(slug="bde", name="BDE")
    bds = await factories.association(slug="bds", name="BDS")
    staff = await factories.user(email="staff@etu.test", display_name="Sam Staff", is_staff=True)
    manager = await factories.user(email="manager@etu.test", display_name="Mona Manager")
    student = await factories.user(email="student@etu.test", display_name="Stella Student",
                                        password_hash=await auth.password_hash(GOOD_PASSWORD))
    await factories.member(association_id=bde, user_id=manager, role=Role.MANAGER)
    published = await factories.event(association_id=bde, slug="gala", title="Gala")
    draft = await factories.event(association_id=bde, slug="brouillon", title="Brouillon",
                                       status=EventStatus.DRAFT)
    submitted = await factories.event(association_id=bde, slug="en-attente", title="En attente",
                                           status=EventStatus.SUBMITTED, submitted_at=utcnow())
    return Cast(bde, bds, staff, manager, student, published, draft, submitted)


async def session_token(user_id: int) -> str:
    async with db.write_session() as session:
        return await auth.session_create(session, user_id=user_id)


def invalid(form) -> bool:
    """The site's own verdict on the input, in the language the visitor speaks (dates are localised).

    A form that crashes on an input cannot accept it either: the server must then answer with a form
    error, and the request shows whether it does (a crash there is a 500 with its traceback)."""
    with translation.override("en"):
        try:
            return not form.is_valid()
        except Exception:  # any crash of the form's own validation counts as "refused"
            return True


async def post_form(browser: Visitor, url: str, data: dict, *, refused: bool, accepted: int = 302) -> httpx.Response:
    """POST ``data``; a refused input must get a 400 with the error on the page and change nothing; an accepted
    one answers ``accepted`` (a redirect, or sign-up's "check your mailbox" page)."""
    before = await db_snapshot()
    response = await browser.post(url, data)
    after = await db_snapshot()
    if refused:
        assert response.status_code == 400, (response.status_code, data)
        assert error_shown(response.text), data
    if refused or response.status_code != accepted:
        assert after == before, (changed_tables(before, after), response.status_code, data)
    return response


def assert_stays_on_site(response) -> None:
    """A redirect never leaves the site: no scheme, no host, nothing a browser reads as "//host"."""
    if response.status_code in (301, 302, 303, 307, 308):
        location = response.headers["location"]
        target = urlsplit(location)
        assert target.scheme == "" and target.netloc == "", location
        assert not location.startswith(("//", "/\\", "\\")), location


def either(valid, fuzz):
    """Half the time the valid value, otherwise the fuzzed one: some examples stay valid end to end."""
    return st.one_of(st.just(valid), fuzz)


def password_pairs(valid: str):
    return st.one_of(st.just((valid, valid)), junk.map(lambda text: (text, text)), st.tuples(junk, junk))


# Accounts.

@FUZZ
@given(email=either("lea@etu.test", emails), display_name=either("Léa Martin", junk),
       promo=either("2027", st.one_of(numbers, st.just(""))), passwords=password_pairs(GOOD_PASSWORD))
@example(email=GROWING_EMAIL, display_name="Léa", promo="", passwords=(GOOD_PASSWORD, GOOD_PASSWORD))
@example(email="lea.martin@etu.test", display_name="Léa Martin", promo="", passwords=("martin.2027", "martin.2027"))
async def test_signup_refuses_hostile_input_with_a_form_error(browser, email, display_name, promo, passwords):
    browser.log_out()  # every example starts as a visitor
    data = {"email": email, "display_name": display_name, "promo": promo,
            "password1": passwords[0], "password2": passwords[1]}
    await post_form(browser, "/account/signup/", data, refused=invalid(SignupForm(data)), accepted=200)


@FUZZ
@given(email=either("student@etu.test", emails), password=either(GOOD_PASSWORD, junk),
       next_url=either("/me/events/", st.one_of(st.sampled_from(NEXT_TRAPS), junk)))
async def test_login_refuses_hostile_input_and_never_redirects_off_site(browser, cast, email, password, next_url):
    browser.log_out()
    data = {"email": email, "password": password, "next": next_url}
    response = await post_form(browser, "/account/login/", data, refused=invalid(LoginForm(data)))
    assert response.status_code in (302, 400, 429)
    assert_stays_on_site(response)


@FUZZ
@given(current=either(GOOD_PASSWORD, junk), passwords=password_pairs("brand-new-secret-1"))
@example(current=GOOD_PASSWORD, passwords=("student-etu-test", "student-etu-test"))
async def test_password_change_refuses_hostile_input(browser, cast, current, passwords):
    browser.log_in(await session_token(cast.student))
    data = {"current_password": current, "new_password1": passwords[0], "new_password2": passwords[1]}
    form = PasswordChangeForm(data, owner_email="student@etu.test", owner_name="Stella Student")
    await post_form(browser, "/account/password/", data, refused=invalid(form))


@FUZZ
@given(language=either("en", junk), next_url=either("/", st.one_of(st.sampled_from(NEXT_TRAPS), junk)))
async def test_language_switch_ignores_unknown_languages_and_stays_on_site(browser, cast, language, next_url):
    browser.log_in(await session_token(cast.student))
    before = await db_snapshot()
    response = await browser.post("/language/", {"language": language, "next": next_url})
    assert response.status_code == 302
    assert_stays_on_site(response)
    if language not in ("fr", "en"):
        assert await db_snapshot() == before
        assert "django_language" not in response.headers.get("set-cookie", "")


@FUZZ
@given(action=either("revoke", junk))
async def test_feed_token_action_revokes_or_renews_whatever_is_sent(browser, cast, action):
    browser.log_in(await session_token(cast.student))
    response = await browser.post("/account/feed/", {"action": action})
    assert response.status_code == (302 if action == "revoke" else 200)  # a new address is shown once, at once
    async with db.read_session() as session:
        token_hash = (await session.execute(select(User.feed_token_hash).where(User.id == cast.student))).scalar_one()
    assert (token_hash is None) == (action == "revoke")


@FUZZ
@given(choices=st.dictionaries(st.one_of(st.sampled_from(list(PREFERENCES)), junk), checkbox, max_size=8))
async def test_notification_preferences_store_only_known_families(browser, cast, choices):
    browser.log_in(await session_token(cast.student))
    response = await browser.post("/account/notifications/", choices)
    assert response.status_code == 302
    async with db.read_session() as session:
        opt_outs = (await session.execute(select(User.email_opt_outs).where(User.id == cast.student))).scalar_one()
    assert set(opt_outs) <= set(PREFERENCES)


slugs = st.one_of(st.sampled_from(("gala", "brouillon", "en-attente", "nope")),
                  st.from_regex(r"[-a-zA-Z0-9_]{1,150}", fullmatch=True))


@FUZZ
@given(slug=slugs, action=st.sampled_from(("register", "leave")), confirm=either("yes", junk))
async def test_register_and_leave_answer_404_for_what_is_not_published_and_never_fail(browser, cast, slug, action,
                                                                                         confirm):
    browser.log_in(await session_token(cast.student))
    before = await db_snapshot()
    response = await browser.post(f"/events/{slug}/{action}/", {"confirm_overlap": confirm})
    if slug != "gala":
        assert response.status_code == 404
        assert await db_snapshot() == before
    else:
        assert response.status_code in (200, 302)


# The management area.

def event_data(association_id: int, **overrides) -> dict:
    data = {"title": "Soirée jeux", "association_id": str(association_id), "category": "gaming",
            "location": "Le Foyer", "starts_at": "2030-05-01T19:00", "ends_at": "2030-05-01T22:00",
            "all_day": "", "capacity": "30", "registration_opens_at": "", "registration_closes_at": "",
            "unregistration_closes_at": "", "description": "Venez nombreux."}
    data.update(overrides)
    return data


def event_fields():
    optional_moment = st.one_of(st.just(""), local_datetimes)
    return {
        "title": either("Soirée jeux", junk),
        "association_id": either(None, st.one_of(numbers, st.just("0"))),  # None: the actor's association
        "category": either("gaming", junk),
        "location": either("Le Foyer", junk),
        "starts_at": either("2030-05-01T19:00", local_datetimes),
        "ends_at": either("2030-05-01T22:00", local_datetimes),
        "all_day": either("", checkbox),
        "capacity": either("30", st.one_of(st.just(""), numbers)),
        "registration_opens_at": either("", optional_moment),
        "registration_closes_at": either("", optional_moment),
        "unregistration_closes_at": either("", optional_moment),
        "description": either("Venez nombreux.", junk),
    }


def fill(association_id: int, fields: dict) -> dict:
    return {name: (str(association_id) if value is None else value) for name, value in fields.items()}


dst_examples = [event_data(0, starts_at=moment, ends_at="2030-05-01T22:00") for moment in DST_TRAPS[:2]] + [
    event_data(0, starts_at="2026-10-20T19:00", ends_at=DST_TRAPS[4])]


@FUZZ
@given(fields=st.fixed_dictionaries(event_fields()))
@example(fields={**dst_examples[0], "association_id": None})
@example(fields={**dst_examples[2], "association_id": None})
async def test_new_event_form_refuses_hostile_input_and_dst_traps(browser, cast, fields):
    browser.log_in(await session_token(cast.manager))
    data = fill(cast.bde, fields)
    form = EventForm(data, associations=[(cast.bde, "BDE")])
    await post_form(browser, "/manage/events/new/", data, refused=invalid(form))


@FUZZ
@given(fields=st.fixed_dictionaries(event_fields()))
@example(fields={**dst_examples[1], "association_id": None})
async def test_editing_a_draft_refuses_hostile_input(browser, cast, fields):
    browser.log_in(await session_token(cast.manager))
    data = fill(cast.bde, fields)
    form = EventForm(data, associations=[(cast.bde, "BDE")])
    await post_form(browser, f"/manage/events/{cast.draft}/edit/", data, refused=invalid(form))


@FUZZ
@given(fields=st.fixed_dictionaries({name: strategy for name, strategy in event_fields().items()
                                     if name in PUBLISHED_EDITABLE}))
async def test_editing_a_published_event_refuses_hostile_input(browser, cast, fields):
    browser.log_in(await session_token(cast.manager))
    data = fill(cast.bde, fields)
    form = EventForm(data, associations=[(cast.bde, "BDE")], only=PUBLISHED_EDITABLE)
    await post_form(browser, f"/manage/events/{cast.published}/edit/", data, refused=invalid(form))


@FUZZ
@given(fields=st.fixed_dictionaries({**event_fields(), "every_weeks": either("1", numbers),
                                     "until": either("2030-06-30", dates)}))
@example(fields={**event_data(0, starts_at="2027-03-21T02:30", ends_at="2027-03-21T04:00"),
                 "association_id": None, "every_weeks": "1", "until": "2027-04-04"})
async def test_series_form_refuses_hostile_input(browser, cast, fields):
    browser.log_in(await session_token(cast.manager))
    data = fill(cast.bde, fields)
    form = SeriesForm(data, associations=[(cast.bde, "BDE")])
    await post_form(browser, "/manage/events/series/", data, refused=invalid(form))


@FUZZ
@given(action=st.sampled_from(("decline", "cancel")), reason=either("Pas de salle.", junk),
       back=either("queue", junk))
async def test_decline_and_cancel_reasons_refuse_hostile_input(browser, cast, action, reason, back):
    browser.log_in(await session_token(cast.staff))
    event_id = cast.submitted if action == "decline" else cast.published
    data = {"reason": reason, "back": back}
    response = await post_form(browser, f"/manage/events/{event_id}/{action}/", data,
                               refused=invalid(ReasonForm(data)))
    assert_stays_on_site(response)


@FUZZ
@given(email=either("student@etu.test", emails))
async def test_adding_an_attendee_refuses_hostile_input(browser, cast, email):
    browser.log_in(await session_token(cast.manager))
    data = {"email": email}
    await post_form(browser, f"/manage/events/{cast.published}/attendees/", data,
                    refused=invalid(AttendeeAddForm(data)))


@FUZZ
@given(email=either("student@etu.test", emails), role=either("editor", st.one_of(junk, st.just("none"))))
async def test_member_role_form_refuses_hostile_input(browser, cast, email, role):
    browser.log_in(await session_token(cast.manager))
    data = {"email": email, "role": role}
    await post_form(browser, f"/manage/associations/{cast.bde}/members/", data, refused=invalid(MemberForm(data)))


@FUZZ
@given(name=either("Club Jeux", junk), slug=either("club-jeux", st.one_of(junk, st.just("bds"))),
       description=either("On joue.", junk), edit=st.booleans())
async def test_association_form_refuses_hostile_input(browser, cast, name, slug, description, edit):
    browser.log_in(await session_token(cast.manager if edit else cast.staff))
    data = {"name": name, "slug": slug, "description": description}
    url = f"/manage/associations/{cast.bde}/edit/" if edit else "/manage/associations/new/"
    await post_form(browser, url, data, refused=invalid(AssociationForm(data)))


@FUZZ
@given(is_staff=checkbox, is_active=checkbox, extra=st.dictionaries(junk, junk, max_size=3))
async def test_user_flags_accept_only_what_a_checkbox_means(browser, cast, is_staff, is_active, extra):
    browser.log_in(await session_token(cast.staff))
    response = await browser.post(f"/manage/users/{cast.student}/",
                                  {**extra, "is_staff": is_staff, "is_active": is_active})
    assert response.status_code == 302


@FUZZ
@given(present=either("no", junk), query=junk)
async def test_check_in_mark_with_hostile_fields_redirects_to_the_check_in_page(browser, cast, present, query):
    registration = await _registration(cast)
    browser.log_in(await session_token(cast.manager))
    response = await browser.post(f"/manage/events/{cast.published}/checkin/{registration}/",
                                  {"present": present, "q": query})
    assert response.status_code == 302
    assert_stays_on_site(response)
    assert urlsplit(response.headers["location"]).path == f"/manage/events/{cast.published}/checkin/"


async def _registration(cast: Cast) -> int:
    async with db.read_session() as session:
        existing = (await session.execute(select(Registration.id).where(
            Registration.event_id == cast.published, Registration.user_id == cast.student))).scalar_one_or_none()
    return existing or await factories.registration_id(event_id=cast.published, user_id=cast.student)


@FUZZ_MANY_URLS
@given(extra=st.dictionaries(st.one_of(hostile, st.just("back")), junk, max_size=4))
async def test_lifecycle_buttons_ignore_extra_hostile_fields(browser, cast, extra):
    browser.log_in(await session_token(cast.staff))
    for url in (f"/manage/events/{cast.draft}/submit/", f"/manage/events/{cast.submitted}/approve/",
                f"/manage/events/{cast.published}/delete/", "/account/logout/"):
        response = await browser.post(url, extra)
        assert response.status_code in (302, 403, 404), url
        assert_stays_on_site(response)


async def test_a_valid_event_form_is_accepted_so_the_oracle_is_not_refusing_everything(browser, cast):
    """The control: the same path with valid data creates the draft (a fuzz run refusing everything proves
    nothing)."""
    browser.log_in(await session_token(cast.manager))
    data = event_data(cast.bde)
    assert not invalid(EventForm(data, associations=[(cast.bde, "BDE")]))
    before = await db_snapshot()
    response = await browser.post("/manage/events/new/", data)
    assert response.status_code == 302
    assert (await db_snapshot())["events"][0] == before["events"][0] + 1
    dst = event_data(cast.bde, starts_at="2027-03-28T02:30", ends_at="2027-03-28T05:00")
    refused = await browser.post("/manage/events/new/", dst)
    assert refused.status_code == 400 and error_shown(refused.text)
    assert "Europe/Paris" in refused.text or "time zone" in refused.text
    ambiguous = await browser.post("/manage/events/new/", event_data(
        cast.bde, starts_at="2026-10-24T19:00", ends_at="2026-10-25T02:30"))
    assert ambiguous.status_code == 400 and error_shown(ambiguous.text)


# The fuzzer's findings, pinned one by one so that each shows as its own test (the fuzz tests above also
# keep them as explicit examples).
FOUND = {
    "sign-up password similar to the e-mail": (None, "/account/signup/", {
        "email": "lea.martin@etu.test", "display_name": "Léa Martin", "password1": "martin.2027",
        "password2": "martin.2027"}),
    "new password similar to the e-mail": ("student", "/account/password/", {
        "current_password": GOOD_PASSWORD, "new_password1": "student-etu-test", "new_password2": "student-etu-test"}),
    "e-mail that outgrows its column once lower-cased": (None, "/account/signup/", {
        "email": GROWING_EMAIL, "display_name": "Léa", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD}),
}


@pytest.mark.parametrize("case", list(FOUND))
async def test_input_found_by_fuzzing_is_answered_without_a_server_error(browser, cast, case):
    who, url, data = FOUND[case]
    if who is not None:
        browser.log_in(await session_token(getattr(cast, who)))
    before = await db_snapshot()
    response = await browser.post(url, data)
    if response.status_code != 302:
        assert response.status_code == 400 and error_shown(response.text), response.status_code
        assert await db_snapshot() == before
