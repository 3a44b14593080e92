"""Public pages answered from memory for visitors without a session (hyperion/publicpages.py), through the
whole ASGI app as uvicorn calls it: the page a visitor gets is always the one Django would render now."""

import asyncio
import itertools
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import AsyncClient
from sqlalchemy import event as sa_event

from events.live import broadcast
from events.models import utcnow
from events.registration import services as registration_services
from events.rules.permissions import Actor
from events.staff import services as staff_services
from hyperion import db, pagecache
from hyperion.app import Admission, HyperionApp
from tests import factories, support


@pytest.fixture
def app(settings):
    settings.PAGE_CACHE_SECONDS = 30.0
    settings.PAGE_CACHE_GRACE_SECONDS = 0.0
    pagecache.clear()
    yield HyperionApp()
    pagecache.clear()


class Answer:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.body = status, body
        self.headers = {name.decode().lower(): value.decode() for name, value in headers}

    @property
    def text(self) -> str:
        return self.body.decode()


async def fetch(app, path: str, *, headers: dict[str, str] | None = None, method: str = "GET") -> Answer:
    """One request through the ASGI app, as uvicorn sends it."""
    answer, close = await open_response(app, path, headers=headers, method=method, whole=True)
    await close()
    return answer


async def open_response(app, path: str, *, headers: dict[str, str] | None = None, method: str = "GET",
                        whole: bool = False):
    """Start a request; return the answer so far (the whole body, or up to its first chunk) and a
    coroutine function that closes the connection (the client leaves) and waits for the app to finish."""
    path, _, query = path.partition("?")
    header_list = [(name.lower().encode(), value.encode())
                   for name, value in {"Host": "testserver", **(headers or {})}.items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "root_path": "", "headers": header_list, "client": ("127.0.0.1", 5000),
             "server": ("testserver", 80)}
    disconnect = asyncio.Event()
    sent_request = False
    messages: list[dict] = []
    got_body = asyncio.Event()

    async def receive():
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        messages.append(message)
        if message["type"] == "http.response.body":
            got_body.set()

    call = asyncio.ensure_future(app(scope, receive, send))
    if whole:
        await asyncio.wait_for(asyncio.shield(call), 10)
    else:
        await asyncio.wait_for(got_body.wait(), 5)

    async def close() -> None:
        disconnect.set()
        await asyncio.wait_for(call, 5)

    start = next(message for message in messages if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in messages if message["type"] == "http.response.body")
    return Answer(start["status"], start["headers"], body), close


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __enter__(self):
        sa_event.listen(db.get_engine().sync_engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc_info) -> None:
        sa_event.remove(db.get_engine().sync_engine, "before_cursor_execute", self._count)

    def _count(self, *_args, **_kwargs) -> None:
        self.count += 1


ENGLISH = {"Accept-Language": "en"}


async def _gala(**columns) -> int:
    # raw: the services announce an approved event's seats over NOTIFY, and on PostgreSQL its echo comes back
    # at a time of its own, invalidating the stored page between the two visits these tests compare.
    association_id = await support.association_create()
    return await support.event_create(association_id=association_id, slug="gala", title="Gala", capacity=3,
                                      **columns)


async def test_a_visitor_gets_the_event_page_again_without_a_query_and_with_its_length(app):
    await _gala()
    first = await fetch(app, "/events/gala/", headers=ENGLISH)
    assert first.status == 200 and "3 seats left" in first.text
    with QueryCounter() as queries:
        again = await fetch(app, "/events/gala/", headers=ENGLISH)
    assert queries.count == 0
    assert again.body == first.body and again.headers["content-length"] == str(len(first.body))
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options", "content-language"):
        assert again.headers[header] == first.headers[header]
    assert again.headers["vary"] == "Accept-Language, Cookie, Accept-Encoding"


async def test_browsers_that_accept_gzip_get_the_stored_page_compressed(app):
    import gzip

    await _gala()
    plain = await fetch(app, "/events/gala/", headers=ENGLISH)
    compressed = await fetch(app, "/events/gala/", headers={**ENGLISH, "Accept-Encoding": "gzip, deflate, br"})
    assert compressed.headers["content-encoding"] == "gzip"
    assert int(compressed.headers["content-length"]) == len(compressed.body) < len(plain.body) / 2
    assert gzip.decompress(compressed.body) == plain.body
    refused = await fetch(app, "/events/gala/", headers={**ENGLISH, "Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.body == plain.body


async def test_a_registration_shows_on_the_event_page_at_once(app):
    event_id = await _gala()
    assert "3 seats left" in (await fetch(app, "/events/gala/", headers=ENGLISH)).text
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event_id, user_id=await factories.user())
    assert "2 seats left" in (await fetch(app, "/events/gala/", headers=ENGLISH)).text
    assert "2 seats left" in (await fetch(app, "/", headers=ENGLISH)).text


async def test_a_change_to_one_event_leaves_the_other_events_pages_stored(app):
    event_id = await _gala()
    await factories.event(association_id=await factories.association(slug="bds", name="BDS"),
                               slug="match", title="Match")
    await fetch(app, "/events/gala/")
    await fetch(app, "/events/match/")
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event_id, user_id=await factories.user())
    with QueryCounter() as queries:
        await fetch(app, "/events/match/")
    assert queries.count == 0
    with QueryCounter() as queries:
        await fetch(app, "/events/gala/")
    assert queries.count > 0


async def test_a_cancellation_by_staff_shows_on_the_event_page_at_once(app):
    event_id = await _gala()
    assert "This event is cancelled" not in (await fetch(app, "/events/gala/", headers=ENGLISH)).text
    staff = Actor(await factories.user(email="staff@etu.test", is_staff=True), True, {})
    async with db.write_session() as session:
        await staff_services.event_transition(session, actor=staff, event_id=event_id, action="cancel",
                                              reason="Pluie")
    page = (await fetch(app, "/events/gala/", headers=ENGLISH)).text
    assert "This event is cancelled" in page and "Pluie" in page


async def test_logged_in_students_never_get_the_visitors_page_nor_the_reverse(app):
    event_id = await _gala()
    user_id = await factories.user(email="bob@etu.test", display_name="Bob")
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event_id, user_id=user_id)
        from events.accounts import auth

        token = await auth.session_create(session, user_id=user_id)
    visitor = await fetch(app, "/events/gala/", headers=ENGLISH)
    assert "Log in to register" in visitor.text
    student = await fetch(app, "/events/gala/", headers={
        **ENGLISH, "Cookie": f"{settings.SESSION_COOKIE_NAME}={token}"})
    assert "your place is confirmed" in student.text and "Bob" in student.text
    assert "Bob" not in (await fetch(app, "/events/gala/", headers=ENGLISH)).text


async def test_a_visitor_carrying_a_message_sees_it(app):
    await _gala()
    assert (await fetch(app, "/", headers=ENGLISH)).status == 200  # the visitors' home page is stored
    browser = AsyncClient()
    await support.login(browser, await factories.user())
    logout = await browser.post("/account/logout/", headers=ENGLISH)
    message_cookie = logout.cookies["messages"].value
    page = await fetch(app, "/", headers={**ENGLISH, "Cookie": f"messages={message_cookie}"})
    assert "You are logged out." in page.text


async def test_languages_are_stored_apart_and_follow_the_language_cookie(app):
    await _gala()
    assert "Upcoming events" in (await fetch(app, "/", headers=ENGLISH)).text
    assert "Événements à venir" in (await fetch(app, "/", headers={"Accept-Language": "fr"})).text
    cookie = {"Accept-Language": "fr", "Cookie": f"{settings.LANGUAGE_COOKIE_NAME}=en"}
    assert "Upcoming events" in (await fetch(app, "/", headers=cookie)).text
    assert "Événements à venir" in (await fetch(app, "/")).text  # no preference: the site's language


async def test_the_page_changes_when_registration_opens(app):
    opens_at = utcnow() + timedelta(seconds=2)
    await _gala(registration_opens_at=opens_at)
    before = (await fetch(app, "/events/gala/", headers=ENGLISH)).text
    assert "Registration opens on" in before and "Log in to register" not in before
    await support.until(lambda: utcnow() >= opens_at + timedelta(milliseconds=50))  # past the page's expiry too
    assert "Log in to register" in (await fetch(app, "/events/gala/", headers=ENGLISH)).text


async def test_simultaneous_visitors_of_a_page_not_yet_stored_cost_one_render(app):
    await _gala()
    with QueryCounter() as one_render:
        await fetch(app, "/events/gala/")
    pagecache.clear()
    with QueryCounter() as queries:
        pages = await asyncio.gather(*(fetch(app, "/events/gala/") for _ in range(20)))
    assert {page.status for page in pages} == {200} and len({page.body for page in pages}) == 1
    assert queries.count == one_render.count


async def test_stored_pages_are_still_answered_while_every_turn_in_django_is_taken(app):
    await _gala()
    await fetch(app, "/events/gala/")
    app.admission = Admission(limit=1, timeout=0.2)
    turn = await app.admission.enter()  # a request busy inside Django holds the only turn
    try:
        assert (await fetch(app, "/events/gala/")).status == 200
        assert (await fetch(app, "/calendar/")).status == 503  # not stored: waits for a turn, then "busy"
    finally:
        turn.release()


async def test_a_visitor_opening_the_live_counter_does_not_wait_for_another_one_open(app):
    await _gala()
    first, close_first = await open_response(app, "/events/gala/seats/")
    try:
        second, close_second = await asyncio.wait_for(open_response(app, "/events/gala/seats/"), timeout=2)
        await close_second()
    finally:
        await close_first()
    assert first.status == second.status == 200 and second.text.startswith("retry:")


async def _page_that_allows_storing_and_sets_a_cookie(request):
    from django.http import HttpResponse

    pagecache.allow(request, tags=(pagecache.LISTS,))
    response = HttpResponse("a page with a cookie")
    response.set_cookie("visitor", str(next(_VISITOR_NUMBERS)))  # a new value per request (ids are reused)
    return response


SERVED: list[str] = []
_VISITOR_NUMBERS = itertools.count(1)


async def _page_never_stored(request, name):
    """Like a personal feed: no session, yet never stored (the view does not allow it)."""
    from django.http import HttpResponse

    SERVED.append(request.path)
    return HttpResponse(request.path)


urlpatterns = [__import__("django.urls").urls.path("cookie/", _page_that_allows_storing_and_sets_a_cookie),
               __import__("django.urls").urls.path("plain/<str:name>/", _page_never_stored)]


async def test_a_page_that_hands_out_a_cookie_is_never_given_to_another_visitor(app, settings):
    settings.ROOT_URLCONF = __name__
    first = await fetch(app, "/cookie/")
    second = await fetch(app, "/cookie/")
    assert "set-cookie" in first.headers and "set-cookie" in second.headers
    assert first.headers["set-cookie"] != second.headers["set-cookie"]


async def test_a_visitor_who_waited_for_anothers_render_of_a_page_never_stored_does_not_queue_again(app, settings):
    settings.ROOT_URLCONF = __name__
    SERVED.clear()
    app.admission = Admission(limit=1, timeout=5)
    turn = await app.admission.enter()  # Django is busy
    others = [f"/plain/{name}/" for name in "abcdef"]
    visits = []
    for path in ["/plain/feed/", "/plain/feed/", *others]:  # the second feed waits for the first one's render
        queued = app.admission.waiting
        visits.append(asyncio.ensure_future(fetch(app, path)))
        if path == "/plain/feed/" and visits[1:]:
            for _turn in range(100):  # it waits on the first's render, in no queue: let the loop take it there
                await asyncio.sleep(0)
        else:
            await support.until(lambda queued=queued: app.admission.waiting == queued + 1)  # in line, in arrival order
    turn.release()
    assert [answer.status for answer in await asyncio.gather(*visits)] == [200] * 8
    # The second feed, which has waited since before the others arrived, is served among the first: the
    # first feed's turn passes on as its response starts, and the second one re-enters the line a few turns
    # of the event loop later, then goes first (behind everyone, it would wait in line a second time).
    assert SERVED[0] == "/plain/feed/" and SERVED.index("/plain/feed/", 1) <= 3
    assert [path for path in SERVED if path != "/plain/feed/"] == others


async def test_visitors_still_get_stored_pages_while_the_database_is_unreachable(app, database_url):
    await _gala()
    await fetch(app, "/events/gala/", headers=ENGLISH)
    await db.engine_dispose()
    db.engine_start("postgresql+asyncpg://postgres@127.0.0.1:9/unreachable")  # nothing listens on port 9
    try:
        stored = await fetch(app, "/events/gala/", headers=ENGLISH)
        not_stored = await fetch(app, "/calendar/", headers=ENGLISH)
    finally:
        await db.engine_dispose()
        db.engine_start(database_url)
    assert stored.status == 200 and "Gala" in stored.text
    assert not_stored.status == 503 and "Try again" in not_stored.text


async def test_while_a_changed_page_is_rendered_again_visitors_get_the_previous_one_at_once(app):
    event_id = await _gala()
    assert "3 seats left" in (await fetch(app, "/events/gala/", headers=ENGLISH)).text
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event_id, user_id=await factories.user())
    app.admission = Admission(limit=1, timeout=30)
    turn = await app.admission.enter()  # Django is busy: the render of the new page waits for a turn
    refresh = asyncio.ensure_future(fetch(app, "/events/gala/", headers=ENGLISH))
    await support.until(lambda: app.admission.waiting == 1)
    meanwhile = await asyncio.wait_for(fetch(app, "/events/gala/", headers=ENGLISH), timeout=1)
    assert "3 seats left" in meanwhile.text and not refresh.done()
    turn.release()
    assert "2 seats left" in (await refresh).text
    assert "2 seats left" in (await fetch(app, "/events/gala/", headers=ENGLISH)).text


async def test_a_page_rendered_after_waiting_in_the_queue_is_stored_despite_changes_during_the_wait(app):
    event_id = await _gala()
    app.admission = Admission(limit=1, timeout=30)
    turn = await app.admission.enter()
    first_visit = asyncio.ensure_future(fetch(app, "/events/gala/", headers=ENGLISH))
    await support.until(lambda: app.admission.waiting == 1)
    news = broadcast.broadcaster.subscribe(event_id)
    try:
        async with db.write_session() as session:  # a change while the visit waits for its turn
            await registration_services.registration_create(session, event_id=event_id,
                                                            user_id=await factories.user())
        # On PostgreSQL the process hears of the change twice: at its commit, and again when the NOTIFY comes
        # back. The page is rendered after both, as a page rendered in between is rightly marked out of date.
        while (await asyncio.wait_for(news.get(), timeout=30)).taken != 1:
            pass
    finally:
        broadcast.broadcaster.unsubscribe(event_id, news)
    turn.release()
    assert "2 seats left" in (await first_visit).text
    with QueryCounter() as queries:
        assert "2 seats left" in (await fetch(app, "/events/gala/", headers=ENGLISH)).text
    assert queries.count == 0


async def test_the_admission_queue_serves_refreshes_of_stored_pages_first_then_arrival_order():
    admission = Admission(limit=1, timeout=5)
    holder = await admission.enter()
    order: list[str] = []

    async def wait(name: str, first: bool = False) -> None:
        turn = await admission.enter(first=first)
        order.append(name)
        await asyncio.sleep(0)
        turn.release()

    waiters = [asyncio.ensure_future(wait("page load 1")), asyncio.ensure_future(wait("page load 2"))]
    await asyncio.sleep(0)
    waiters.append(asyncio.ensure_future(wait("refresh", first=True)))
    await asyncio.sleep(0)
    holder.release()
    await asyncio.gather(*waiters)
    assert order == ["refresh", "page load 1", "page load 2"]


async def test_pages_leave_no_reference_cycles_behind(app, settings):
    """A request's objects are freed as soon as it is answered, not left for the cyclic garbage collector,
    whose full collections stop the event loop for every client (~100 ms each at 1,000 clients): the
    message storage and the request referred to each other, and Django's watch for a client leaving
    (a task and an exception group per request) left their frames in cycles."""
    import gc

    settings.PAGE_CACHE_SECONDS = 0.0  # Django renders every page here
    event_id = await _gala()
    user_id = await factories.user()
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event_id, user_id=user_id)
        from events.accounts import auth

        token = await auth.session_create(session, user_id=user_id)
    student = {**ENGLISH, "Cookie": f"{settings.SESSION_COOKIE_NAME}={token}"}
    pages = [("/", ENGLISH), ("/events/gala/", ENGLISH), ("/events/gala/", student), ("/me/events/", student),
             ("/healthz", {})]
    for path, headers in pages:
        await fetch(app, path, headers=headers)  # first renders: templates compiled, statements cached
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for path, headers in pages:
            assert (await fetch(app, path, headers=headers)).status == 200
        gc.collect()
        left = sorted({type(thing).__name__ for thing in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
