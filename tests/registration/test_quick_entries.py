"""A lottery's entries answered without Django's handler (hyperion/quickposts.py, events/views/quick.py),
through the whole ASGI app as uvicorn calls it: every entrant gets exactly the answer Django gives, the entry
is written once, and whatever is not the common case (a forged token, a second ask, an unconfirmed address,
another language) is Django's to answer, as before."""

from __future__ import annotations

import asyncio
import re
from http.cookies import SimpleCookie
from types import SimpleNamespace

import pytest
from django.conf import settings
from sqlalchemy import func, select, update

from events.models import Registration, RegistrationStatus, User
from hyperion import db, pagecache
from hyperion.app import HyperionApp
from tests import factories, support

# The message of an entry just made (the event page's own box says the entry is recorded too).
RECORDED_FR = "Le moment de votre demande pendant la période ne compte pas"
RECORDED_EN = "When you asked during the window does not matter"


@pytest.fixture
def app(settings):
    settings.PAGE_CACHE_SECONDS = 30.0
    pagecache.clear()
    application = HyperionApp()
    application.django_calls = 0
    django = application.django

    async def counted(scope, receive, send):
        application.django_calls += 1
        await django(scope, receive, send)

    application.django = counted
    yield application
    pagecache.clear()


class Answer:
    def __init__(self, start: dict, body: bytes) -> None:
        self.status = start["status"]
        self.raw_headers = start["headers"]
        self.headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
        self.cookies = SimpleCookie()
        for name, value in start["headers"]:
            if name.lower() == b"set-cookie":
                self.cookies.load(value.decode())
        self.text = body.decode()


async def call(app, method: str, path: str, *, cookies: dict[str, str], body: bytes = b"",
               language: str = "fr") -> Answer:
    """One request through the ASGI app, as uvicorn hands it over (the body in one message)."""
    headers = [(b"host", b"testserver"), (b"accept-language", language.encode()),
               (b"cookie", "; ".join(f"{name}={value}" for name, value in cookies.items()).encode())]
    if body:
        headers += [(b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    messages: list[dict] = []
    received = False
    done = asyncio.Event()

    async def receive():
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        messages.append(message)

    await app(scope, receive, send)
    done.set()
    start = next(message for message in messages if message["type"] == "http.response.start")
    return Answer(start, b"".join(message.get("body", b"") for message in messages
                                  if message["type"] == "http.response.body"))


class Student:
    """A logged-in student's browser: its cookies, and the form token of the event page it opened."""

    def __init__(self, app, user_id: int, language: str = "fr") -> None:
        self.app, self.user_id, self.language = app, user_id, language
        self.cookies: dict[str, str] = {}
        self.token = ""

    async def start(self) -> Student:
        self.cookies[settings.SESSION_COOKIE_NAME] = await support.login(SimpleNamespace(cookies={}), self.user_id)
        return self

    async def open(self, path: str) -> Answer:
        answer = await call(self.app, "GET", path, cookies=self.cookies, language=self.language)
        self.keep(answer)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', answer.text)
        if found:
            self.token = found[1]
        return answer

    async def ask(self, slug: str, *, token: str | None = None) -> Answer:
        body = f"csrfmiddlewaretoken={token or self.token}".encode()
        answer = await call(self.app, "POST", f"/events/{slug}/register/", cookies=self.cookies, body=body,
                            language=self.language)
        self.keep(answer)
        return answer

    def keep(self, answer: Answer) -> None:
        for name, morsel in answer.cookies.items():
            if morsel.value:
                self.cookies[name] = morsel.value
            else:
                self.cookies.pop(name, None)


async def students(app, count: int, *, prefix: str = "s", language: str = "fr") -> list[Student]:
    return [await Student(app, await factories.user(email=f"{prefix}{index}@etu.test",
                                                    display_name=f"{prefix} {index}"), language).start()
            for index in range(count)]


async def entries(event_id: int) -> dict[int, int]:
    """user id -> how many registrations they have for the event (never more than one)."""
    async with db.read_session() as session:
        rows = (await session.execute(select(Registration.user_id, func.count()).where(
            Registration.event_id == event_id, Registration.status == RegistrationStatus.ENTERED)
            .group_by(Registration.user_id))).all()
    return dict(rows)


async def test_every_entrant_gets_djangos_answer_and_after_the_first_django_is_not_called(app):
    event_id = await factories.lottery_event(capacity=2)
    first, *others = await students(app, 4)
    for student in (first, *others):
        assert (await student.open("/events/gala/")).status == 200  # the page: the ask's button and token
    calls = app.django_calls
    told = await first.ask("gala")  # Django's answer, kept
    assert told.status == 302 and told.headers["location"] == "/events/gala/"
    assert app.django_calls == calls + 1
    answers = [await student.ask("gala") for student in others]
    assert app.django_calls == calls + 1  # the others' asks never reached Django's handler
    for answer in answers:
        assert (answer.status, answer.raw_headers) == (told.status, told.raw_headers)
    assert await entries(event_id) == {student.user_id: 1 for student in (first, *others)}
    page = await others[-1].open("/events/gala/")  # the message the kept answer's cookie carries
    assert RECORDED_FR in page.text
    assert "messages" not in others[-1].cookies  # shown once, then gone, as Django's own message


async def test_a_forged_token_a_second_ask_and_an_unconfirmed_address_are_djangos_to_answer(app):
    event_id = await factories.lottery_event(capacity=2)
    first, second, third = await students(app, 3)
    for student in (first, second, third):
        await student.open("/events/gala/")
    await first.ask("gala")  # the answer is kept from here on
    forged = await second.ask("gala", token="x" * 64)
    assert forged.status == 403 and await entries(event_id) == {first.user_id: 1}
    again = await first.ask("gala")  # asked once already: the existing entry, nothing more
    assert again.status == 302 and await entries(event_id) == {first.user_id: 1}
    assert RECORDED_FR in (await first.open("/events/gala/")).text  # the locked path's answer
    async with db.write_session() as session, session.begin():  # raw: no service un-confirms an address
        await session.execute(update(User).where(User.id == third.user_id).values(email_verified_at=None))
    unconfirmed = await third.ask("gala")
    assert unconfirmed.headers["location"] == "/account/" and await entries(event_id) == {first.user_id: 1}


async def test_each_language_gets_its_own_answer(app):
    event_id = await factories.lottery_event(capacity=2)
    french = await students(app, 2, prefix="fr")
    english = await students(app, 2, prefix="en", language="en")
    for student in (*french, *english):
        await student.open("/events/gala/")
    for student in (*french, *english):
        assert (await student.ask("gala")).status == 302
    assert RECORDED_EN in (await english[1].open("/events/gala/")).text
    assert RECORDED_FR in (await french[1].open("/events/gala/")).text
    assert len(await entries(event_id)) == 4


async def test_a_failure_in_the_quick_path_leaves_the_ask_to_django(app, monkeypatch):
    """The write failed (a lost connection, say) before or at its commit: Django answers the same request in
    full, and the student has one entry whatever the failed write did."""
    event_id = await factories.lottery_event(capacity=2)
    first, second = await students(app, 2)
    for student in (first, second):
        await student.open("/events/gala/")
    await first.ask("gala")
    from events.views import quick

    entry, failures = quick.registration.lottery_entry, []

    async def lost_once(*args, **kwargs):  # the quick path's try fails; Django's, just after, reaches the database
        if not failures:
            failures.append(args)
            raise ConnectionResetError("the database connection was lost")
        return await entry(*args, **kwargs)

    monkeypatch.setattr(quick.registration, "lottery_entry", lost_once)
    calls = app.django_calls
    answer = await second.ask("gala")
    assert failures and answer.status == 302 and app.django_calls == calls + 1
    assert await entries(event_id) == {first.user_id: 1, second.user_id: 1}
