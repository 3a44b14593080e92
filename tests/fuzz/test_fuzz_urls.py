"""Every URL of the site, fuzzed: query parameters, path parameters (slugs, ids, tokens), raw bytes and
headers. A GET never fails (4xx at worst, usually the page with the bad value ignored or explained) and
never changes the database."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.utils import translation
from hypothesis import example, given
from hypothesis import strategies as st

from events.accounts import auth
from events.accounts import services as account_services
from events.catalog.categories import CATEGORIES
from events.catalog.forms import EventFilterForm
from events.models import EventStatus, Role
from events.registration import services as registration_services
from hyperion import db
from tests import factories
from tests.fuzz import (
    FUZZ,
    FUZZ_MANY_URLS,
    Visitor,
    busy_server_connections,
    checkbox,
    database_unchanged,
    dates,
    emails,
    end_busy_server_connections,
    error_shown,
    fuzz_server,
    hostile,
    junk,
    numbers,
    visitor_client,
)


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    with fuzz_server(tmp_path_factory.mktemp("fuzz-urls"), database_url) as running:
        yield running


@pytest.fixture
async def browser(server):
    async with visitor_client(server) as client:
        yield Visitor(server, client)
    await end_busy_server_connections()  # after a finding, the next tests still start from clean tables


@pytest.fixture
async def site() -> dict:
    """An association with a published and a draft event, a staff member, and a registered student who owns
    a feed token (so the staff lists, attendees and audit pages have rows to filter)."""
    bde = await factories.association(slug="bde", name="BDE")
    published = await factories.event(association_id=bde, slug="gala", title="Gala")
    draft = await factories.event(association_id=bde, slug="brouillon", title="Brouillon",
                                       status=EventStatus.DRAFT)
    staff = await factories.user(email="staff@etu.test", display_name="Sam Staff", is_staff=True)
    student = await factories.user(email="student@etu.test", display_name="Stella Student")
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=published, user_id=student)
    async with db.write_session() as session:
        await account_services.feed_token_regenerate(session, user_id=student)
    await factories.member(association_id=bde, user_id=student, role=Role.MEMBER)
    async with db.write_session() as session:
        token = await auth.session_create(session, user_id=staff)
    return {"bde": bde, "published": published, "draft": draft, "staff": staff, "student": student,
            "staff_token": token}


def maybe(strategy):
    return st.one_of(st.just(None), strategy)


def present(params: dict) -> dict:
    return {name: value for name, value in params.items() if value is not None}


slug_like = st.from_regex(r"[-a-z0-9]{1,90}", fullmatch=True)


@FUZZ
@given(params=st.fixed_dictionaries({
    "q": maybe(junk), "association": maybe(st.one_of(st.just("bde"), slug_like, junk)),
    "category": maybe(st.one_of(st.sampled_from(list(CATEGORIES)), junk)), "date_from": maybe(dates),
    "date_to": maybe(dates), "has_seats": maybe(checkbox), "page": maybe(numbers)}).map(present))
@example(params={"date_from": "2026-06-10", "date_to": "2026-06-01"})
@example(params={"q": "\x00", "page": "9" * 5000})
async def test_home_filters_never_fail_and_explain_bad_values(browser, site, params):
    async with database_unchanged(params):
        response = await browser.get("/", params=params)
    assert response.status_code == 200
    # A date the visitor typed and the site cannot use is explained; an unknown choice or an unusable search
    # is left out (the menus show "All"), never a failure.
    with translation.override("en"):
        form = EventFilterForm(params)
        if params and not form.is_valid() and {"date_from", "date_to"} & set(form.errors):
            assert error_shown(response.text), (params, form.errors)


@FUZZ
@given(month=maybe(st.one_of(junk, st.tuples(st.integers(-10, 10**6), st.integers(-20, 20)).map(
    lambda pair: f"{pair[0]}-{pair[1]}"))), week=maybe(st.one_of(dates, junk)))
@example(month="2027-03", week="2027-03-28")
@example(month="10000-01", week="9999-12-31")
async def test_calendar_month_and_week_never_fail(browser, site, month, week):
    async with database_unchanged((month, week)):
        month_page = await browser.get("/calendar/", params=present({"month": month}))
        week_page = await browser.get("/calendar/week/", params=present({"week": week}))
    assert month_page.status_code == week_page.status_code == 200


@FUZZ_MANY_URLS
@given(text=st.one_of(junk, slug_like, st.just("gala"), st.just("brouillon")))
@example(text="\x00")
async def test_slugs_and_feed_tokens_in_paths_are_404_when_unknown(browser, site, text):
    segment = quote(text, safe="")
    async with database_unchanged(text):
        for url in (f"/events/{segment}/", f"/associations/{segment}/", f"/events/{segment}.ics",
                    f"/feeds/associations/{segment}.ics", f"/feeds/categories/{segment}.ics",
                    f"/feeds/me/{segment}.ics"):
            response = await browser.get(url)
            assert response.status_code in (200, 404, 405), url  # 405: "a/register" made a POST-only path
            if text == "brouillon":
                assert response.status_code == 404, url  # a draft does not exist for a visitor


INT_ROUTES_GET = ("/manage/events/{}/", "/manage/events/{}/edit/", "/manage/events/{}/decline/",
                  "/manage/events/{}/cancel/", "/manage/events/{}/delete/", "/manage/events/{}/attendees/",
                  "/manage/events/{}/attendees.csv", "/manage/events/{}/checkin/",
                  "/manage/events/{}/attendees/{}/remove/", "/manage/associations/{}/edit/",
                  "/manage/associations/{}/members/")
INT_ROUTES_POST = ("/manage/events/{}/submit/", "/manage/events/{}/approve/", "/manage/events/{}/checkin/{}/",
                   "/manage/users/{}/", "/manage/outbox/{}/retry/")


@FUZZ_MANY_URLS
@given(number=st.one_of(st.integers(min_value=0, max_value=2**31 + 10), st.integers(min_value=0, max_value=10**40)))
@example(number=2**31)
@example(number=2**63)
@example(number=10**30)
async def test_unknown_or_huge_ids_in_paths_are_404_for_staff(browser, site, number):
    browser.log_in(site["staff_token"])
    known = {site["bde"], site["published"], site["draft"], site["staff"], site["student"]}
    async with database_unchanged(number):
        for template in INT_ROUTES_GET:
            url = template.format(number, number)
            response = await browser.get(url)
            assert response.status_code in (200, 302, 403, 404), url
            if number not in known and number > 1000:
                assert response.status_code == 404, url
    if number > 1000:  # unknown: nothing to act on, whatever the action
        async with database_unchanged(number):
            for template in INT_ROUTES_POST:
                url = template.format(number, number)
                response = await browser.post(url, {})
                assert response.status_code == 404, url


@FUZZ
@given(params=st.fixed_dictionaries({
    "q": maybe(junk), "status": maybe(st.one_of(st.sampled_from([s.value for s in EventStatus]), junk)),
    "association": maybe(numbers), "page": maybe(numbers)}).map(present))
@example(params={"q": "%_\\", "association": "99999999999999999999"})
async def test_staff_event_list_filters_never_fail(browser, site, params):
    browser.log_in(site["staff_token"])
    async with database_unchanged(params):
        response = await browser.get("/manage/events/", params=params)
    assert response.status_code == 200


@FUZZ
@given(params=st.fixed_dictionaries({
    "action": maybe(junk), "actor": maybe(emails),
    "object_type": maybe(st.one_of(st.sampled_from(("event", "registration", "user", "association")), junk)),
    "object_id": maybe(numbers), "page": maybe(numbers)}).map(present))
@example(params={"object_id": "2147483648", "action": "%"})
async def test_audit_filters_never_fail(browser, site, params):
    browser.log_in(site["staff_token"])
    async with database_unchanged(params):
        response = await browser.get("/manage/audit/", params=params)
    assert response.status_code == 200


@FUZZ_MANY_URLS
@given(query=junk, page=maybe(numbers))
@example(query="\x00", page=None)
@example(query="%_\\'", page="-1")
async def test_staff_searches_never_fail(browser, site, query, page):
    browser.log_in(site["staff_token"])
    async with database_unchanged(query):
        for url in ("/manage/users/", f"/manage/events/{site['published']}/attendees/",
                    f"/manage/events/{site['published']}/checkin/"):
            response = await browser.get(url, params=present({"q": query, "page": page}))
            assert response.status_code == 200, url


@FUZZ
@given(path=st.lists(st.one_of(junk, st.sampled_from(("manage", "events", "feeds", "me", "..", ".", "static",
                                                      "account", "%2e%2e", "%00")))).map("/".join),
       query=st.lists(st.tuples(junk, junk), max_size=6))
@example(path="static/../../etc/passwd", query=[])
@example(path="static/%2e%2e/%2e%2e/etc/passwd", query=[])
@example(path="//evil.example/", query=[])  # httpx once refused to send a path starting with "//"
async def test_any_path_and_query_string_is_answered_without_a_server_error(browser, site, path, query):
    url = "/" + quote(path, safe="/%")  # "%" kept raw: broken escapes reach the server as such
    async with database_unchanged((url, query)):
        response = await browser.get(url, params=query)
    assert response.status_code < 500
    assert "root:" not in response.text


INVALID_UTF8 = ("%ff", "%fe%ff", "%c0%af", "%ed%a0%80", "%e2%82", "%f4%90%80%80", "%", "%zz", "%%", "%0")


@FUZZ_MANY_URLS
@given(raw=st.lists(st.one_of(st.sampled_from(INVALID_UTF8), st.sampled_from(("a", "=", "&", "+", ";"))),
                    max_size=20).map("".join))
async def test_invalid_utf8_and_broken_percent_escapes_in_the_query_and_path(browser, site, raw):
    browser.log_in(site["staff_token"])
    async with database_unchanged(raw):
        for url in (f"/?q={raw}&{raw}", f"/calendar/?month={raw}", f"/manage/users/?q={raw}",
                    f"/manage/audit/?action={raw}", f"/events/{raw}/", f"/feeds/me/{raw}.ics"):
            response = await browser.get(url)
            assert response.status_code < 500, url


FORM_POSTS = ("/account/signup/", "/account/login/", "/language/", "/events/gala/register/",
              "/account/password/", "/account/feed/", "/account/notifications/", "/manage/events/new/",
              "/manage/associations/new/")


@FUZZ_MANY_URLS
@given(body=st.one_of(st.binary(max_size=500),
                      st.lists(st.sampled_from(INVALID_UTF8 + ("email=", "&", "password=", "=", "a")),
                               max_size=20).map(lambda parts: "".join(parts).encode())),
       content_type=st.sampled_from(("application/x-www-form-urlencoded", "multipart/form-data",
                                     "multipart/form-data; boundary=", "multipart/form-data; boundary=x",
                                     "application/json", "text/plain", "application/x-www-form-urlencoded; "
                                     "charset=utf-16", "application/x-www-form-urlencoded; charset=nope")))
async def test_raw_and_malformed_bodies_are_refused_without_a_server_error(browser, site, body, content_type):
    """The CSRF token travels in a header here, so the body itself is what the server has to cope with
    (whatever part of it parses may be a valid form: only the absence of a server error is checked)."""
    browser.log_in(site["staff_token"])
    for url in FORM_POSTS:
        response = await browser.request("POST", url, content=body, headers={
            "Content-Type": content_type, "X-CSRFToken": browser.csrf})
        assert response.status_code < 500, url


# What h11 lets a client send: printable ASCII without surrounding blanks.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300).map(str.strip)


@FUZZ_MANY_URLS
@given(accept_language=header_text, cookie=header_text, if_none_match=header_text, if_modified_since=header_text,
       host=st.one_of(st.just("127.0.0.1"), header_text))
@example(accept_language="x" * 300, cookie="hyperion_session=" + "a" * 200, if_none_match="*",
         if_modified_since="Mon, 32 Foo 99999 99:99:99 GMT", host="evil.example")
async def test_hostile_headers_are_answered_without_a_server_error(browser, site, accept_language, cookie,
                                                                   if_none_match, if_modified_since, host):
    headers = {"Accept-Language": accept_language, "Cookie": cookie, "If-None-Match": if_none_match,
               "If-Modified-Since": if_modified_since, "Host": host}
    browser.client.cookies.clear()
    async with database_unchanged(headers):
        for url in ("/", "/feeds/events.ics", "/events/gala/", "/account/login/"):
            response = await browser.get(url, headers=headers)
            assert response.status_code < 500, url
    browser.arm_csrf()


@FUZZ_MANY_URLS
@given(extra=st.dictionaries(st.one_of(hostile, junk), st.one_of(junk, st.lists(junk, max_size=3)), max_size=5))
async def test_repeated_and_unexpected_parameters_are_ignored(browser, site, extra):
    browser.log_in(site["staff_token"])
    async with database_unchanged(extra):
        for url in ("/", "/calendar/", "/calendar/week/", "/events/gala/", "/manage/events/", "/manage/audit/",
                    "/manage/users/", "/me/events/", "/account/", "/feeds/events.ics"):
            response = await browser.get(url, params=extra)
            assert response.status_code == 200, url


# The fuzzer's findings, pinned one by one so that each shows as its own test.
FOUND = {
    "event id above 2**31 (PostgreSQL integer)": ("GET", "/manage/events/2147483648/", 404),
    "event id above 2**63 (SQLite integer)": ("GET", "/manage/events/9223372036854775808/", 404),
    "association id above 2**31": ("GET", "/manage/associations/2147483648/members/", 404),
    "user id above 2**63 in a POST": ("POST", "/manage/users/9223372036854775808/", 404),
    "registration id above 2**31 in a POST": ("POST", "/manage/events/{published}/checkin/2147483648/", 404),
    "NUL in a personal feed token": ("GET", "/feeds/me/%00.ics", 404),
    "NUL in the users search": ("GET", "/manage/users/?q=%00", 200),
    "NUL in the attendees search": ("GET", "/manage/events/{published}/attendees/?q=%00", 200),
    "NUL in the check-in search": ("GET", "/manage/events/{published}/checkin/?q=%00", 200),
}


@pytest.mark.parametrize("case", list(FOUND))
async def test_input_found_by_fuzzing_is_answered_without_a_server_error(browser, site, case):
    method, url, status = FOUND[case]
    browser.log_in(site["staff_token"])
    async with database_unchanged(case):
        response = await browser.request(method, url.format(published=site["published"]),
                                         data={"csrfmiddlewaretoken": browser.csrf})
    assert response.status_code == status
    assert await busy_server_connections() == []


@pytest.mark.postgres_only
async def test_a_refused_statement_leaves_no_connection_holding_locks(site, database_url, tmp_path):
    """A request the database refuses must not leave its connection inside a statement: the locks it took
    (ACCESS SHARE on events) would make any migration, and every query queued behind that, wait. A server
    of its own: the statement must be new to the connection (asyncpg prepares it in the same round trip)."""
    with fuzz_server(tmp_path, database_url) as server:
        async with visitor_client(server) as client:
            client.cookies.set(django_settings.SESSION_COOKIE_NAME, site["staff_token"])
            await client.get("/manage/events/2147483648/")  # refused by asyncpg: the id overflows int4
            busy = await busy_server_connections()
            await end_busy_server_connections()
    assert busy == []
