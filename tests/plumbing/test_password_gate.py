"""Password hashing behind its gate (hyperion/threadgate.py): a bounded line, 429 with Retry-After past it,
places of it kept for log-ins, which go first, and no admission turn held while a hash waits or runs, so pages
are answered during a flood of sign-ups and a real log-in still gets in."""

import asyncio
import threading
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password
from sqlalchemy import func, select

from events.accounts import auth
from events.models import Throttle, User
from hyperion import turns
from hyperion.app import Admission, HyperionApp
from hyperion.threadgate import GateFull, ThreadGate
from tests import factories, support
from tests.accounts.test_views_account import GOOD_PASSWORD, signup_data

CSRF_SECRET = "a" * 32  # a CSRF secret as the cookie holds it; the form may carry it unmasked


class Answer:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.body = status, body
        self.headers = {name.decode().lower(): value.decode() for name, value in headers}

    @property
    def text(self) -> str:
        return self.body.decode()


async def call(app, path: str, *, form: dict | None = None, cookies: dict | None = None,
               language: str = "en") -> Answer:
    """One request through the whole ASGI app (admission included), as uvicorn sends it."""
    path, _, query = path.partition("?")
    body = urlencode(form).encode() if form is not None else b""
    cookies = {django_settings.CSRF_COOKIE_NAME: CSRF_SECRET, **(cookies or {})}
    headers = [(b"host", b"testserver"), (b"accept-language", language.encode()),
               (b"cookie", "; ".join(f"{name}={value}" for name, value in cookies.items()).encode())]
    if form is not None:
        headers += [(b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST" if form is not None else "GET", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": query.encode(), "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    messages: list[dict] = []
    received = False
    never = asyncio.Event()

    async def receive():
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()  # the client stays until the answer is sent

    async def send(message):
        messages.append(message)

    await app(scope, receive, send)
    start = next(message for message in messages if message["type"] == "http.response.start")
    return Answer(start["status"], start["headers"],
                  b"".join(message.get("body", b"") for message in messages if message["type"] == "http.response.body"))


class HeldHashes:
    """Stands in for Django's hashers: each hash blocks its thread until the test lets it go."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.started: list[str] = []  # "new" (a new hash) or "check", in the order their threads took them

    def make_password(self, raw_password):
        self.started.append("new")
        self.go.wait(60)  # bounded, so that a failed test ends its threads
        return make_password(raw_password)

    def check_password(self, raw_password, encoded):
        from django.contrib.auth.hashers import check_password

        self.started.append("check")
        self.go.wait(60)
        return check_password(raw_password, encoded)


@pytest.fixture
def held(monkeypatch):
    hashes = HeldHashes()
    monkeypatch.setattr(auth, "make_password", hashes.make_password)
    monkeypatch.setattr(auth, "check_password", hashes.check_password)
    yield hashes
    hashes.go.set()


@pytest.fixture
def app(settings):
    settings.SERVER_MAX_IN_FLIGHT = 1  # one request inside Django at a time: a held turn would block every page
    settings.PASSWORD_HASH_THREADS = 1
    settings.PASSWORD_HASH_QUEUE = 2
    settings.PASSWORD_HASH_QUEUE_LOGIN = 1  # a line of 2: one place for a new hash, one kept for a log-in
    return HyperionApp()


def login_form(email: str, password: str = GOOD_PASSWORD) -> dict:
    return {"email": email, "password": password, "csrfmiddlewaretoken": CSRF_SECRET}


def signup_form(number: int) -> dict:
    return {**signup_data(email=f"new{number}@etu.test", display_name=f"New {number}"),
            "csrfmiddlewaretoken": CSRF_SECRET}


async def _count(model) -> int:
    async with support.db.read_session() as session:
        return (await session.execute(select(func.count(model.id)))).scalar_one()


async def _attempts_counted() -> int:
    """Log-in and password-change attempts the throttles hold against anyone."""
    async with support.db.read_session() as session:
        return (await session.execute(select(func.coalesce(func.sum(Throttle.attempts), 0)))).scalar_one()


async def test_a_flood_of_sign_ups_is_refused_first_and_a_log_in_still_gets_in_ahead_of_them(app, held):
    user_id = await factories.user(email="bob@etu.test", display_name="Bob",
                                        password_hash=make_password(GOOD_PASSWORD))
    async with support.db.write_session() as session:
        token = await auth.session_create(session, user_id=user_id)
    gate = auth.password_gate

    # One sign-up hashing (its thread held), one waiting for the thread: the sign-ups' part of the line is full.
    hashing = asyncio.create_task(call(app, "/account/signup/", form=signup_form(1)))
    await support.until(lambda: gate.running == 1, what="the first sign-up hashing")
    waiting_signup = asyncio.create_task(call(app, "/account/signup/", form=signup_form(2)))
    await support.until(lambda: gate.waiting == 1, what="a sign-up waiting for the hashing thread")
    refused_signup = await call(app, "/account/signup/", form=signup_form(3))

    # A real log-in still takes the place kept for it rather than a 429.
    waiting = asyncio.create_task(call(app, "/account/login/", form=login_form("bob@etu.test")))
    await support.until(lambda: gate.waiting_priority == 1, what="a log-in waiting for the hashing thread")

    # None of them holds an admission turn (the limit is 1): pages, logged in or not, are answered.
    health = await call(app, "/healthz?db=1")
    assert health.status == 200 and health.text == "ok\n"
    home = await call(app, "/", cookies={django_settings.SESSION_COOKIE_NAME: token})
    assert home.status == 200 and "Bob" in home.text
    assert app.admission.waiting == 0

    # Past the whole line, a log-in too gets 429 at once, with Retry-After and the site's page; nothing written.
    attempts_counted = await _attempts_counted()  # the log-in in the line counts its attempt
    refused_login = await call(app, "/account/login/", form=login_form("bob@etu.test", "wrong-password"),
                               language="fr")
    for refused in (refused_signup, refused_login):
        assert refused.status == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-frame-options"] == "DENY" and "content-security-policy" in refused.headers
    assert "Too many requests at once" in refused_signup.text and "try again in" in refused_signup.text
    assert "Trop de demandes à la fois" in refused_login.text and "réessayez dans" in refused_login.text
    assert await _count(User) == 1 and await _attempts_counted() == attempts_counted
    assert not hashing.done() and not waiting_signup.done() and not waiting.done()

    held.go.set()
    signed_up, signed_up_later, logged_in = await asyncio.gather(hashing, waiting_signup, waiting)
    for answer in (signed_up, signed_up_later):
        assert answer.status == 200 and "Check your mailbox" in answer.text  # the link to confirm is sent
    assert logged_in.status == 302
    assert django_settings.SESSION_COOKIE_NAME in logged_in.headers["set-cookie"]
    assert held.started == ["new", "check", "new"]  # the freed thread went to the log-in, arrived last
    async with support.db.read_session() as session:
        emails = set((await session.execute(select(User.email))).scalars())
    assert emails == {"bob@etu.test", "new1@etu.test", "new2@etu.test"}  # not new3: it was refused
    assert gate.running == 0 and gate.waiting == 0
    assert app.admission._inside == 0  # every turn given back once, and taken again, is released


async def test_a_password_change_past_the_line_gets_429_and_keeps_the_old_password(app, held):
    old_hash = make_password(GOOD_PASSWORD)
    user_id = await factories.user(email="bob@etu.test", display_name="Bob", password_hash=old_hash)
    async with support.db.write_session() as session:
        token = await auth.session_create(session, user_id=user_id)
    hashing = asyncio.create_task(call(app, "/account/signup/", form=signup_form(1)))
    waiting = asyncio.create_task(call(app, "/account/signup/", form=signup_form(2)))
    await support.until(lambda: auth.password_gate.running == 1 and auth.password_gate.waiting == 1,
                        what="the sign-ups' part of the line full")
    checking = asyncio.create_task(call(app, "/account/login/", form=login_form("bob@etu.test")))
    await support.until(lambda: auth.password_gate.waiting_priority == 1, what="the whole line full")
    refused = await call(app, "/account/password/", cookies={django_settings.SESSION_COOKIE_NAME: token}, form={
        "current_password": GOOD_PASSWORD, "new_password1": "another-long-passphrase",
        "new_password2": "another-long-passphrase", "csrfmiddlewaretoken": CSRF_SECRET})
    assert refused.status == 429 and "retry-after" in refused.headers
    held.go.set()
    await asyncio.gather(hashing, waiting, checking)
    async with support.db.read_session() as session:
        assert (await session.execute(select(User.password_hash).where(User.id == user_id))).scalar_one() == old_hash


async def test_the_gate_runs_calls_within_its_bounds_and_refuses_past_its_line():
    go = threading.Event()
    lock = threading.Lock()
    inside = peak = 0
    gate = ThreadGate("test-gate", running=lambda: 2, waiting=lambda: 3)

    def work(number: int) -> int:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        go.wait(60)
        with lock:
            inside -= 1
        return number * 10

    calls = [asyncio.create_task(gate.run(work, number)) for number in range(5)]
    await support.until(lambda: gate.running == 2 and gate.waiting == 3, what="2 running, 3 waiting")
    with pytest.raises(GateFull) as refusal:
        await gate.run(work, 99)
    assert refusal.value.retry_after >= 1
    go.set()
    assert await asyncio.gather(*calls) == [0, 10, 20, 30, 40]
    assert peak == 2
    assert gate.running == 0 and gate.waiting == 0


async def test_a_freed_thread_goes_to_the_priority_calls_waiting_first_each_lane_in_arrival_order():
    go = {name: threading.Event() for name in ("first", "new 1", "check 1", "new 2", "check 2")}
    started: list[str] = []
    gate = ThreadGate("test-lanes", running=lambda: 1, waiting=lambda: 4, reserved=lambda: 2)

    def work(name: str) -> str:
        started.append(name)
        go[name].wait(60)
        return name

    first = asyncio.create_task(gate.run(work, "first"))
    await support.until(lambda: started == ["first"], what="the first call running")
    calls = []
    for name in ("new 1", "check 1", "new 2", "check 2"):  # arrivals alternate between the lanes
        calls.append(asyncio.create_task(gate.run(work, name, priority=name.startswith("check"))))
        await support.until(lambda: gate.waiting == len(calls), what=f"{name} waiting")
    for name in ("first", "check 1", "check 2", "new 1", "new 2"):
        go[name].set()
    assert await asyncio.gather(first, *calls) == ["first", "new 1", "check 1", "new 2", "check 2"]
    assert started == ["first", "check 1", "check 2", "new 1", "new 2"]
    assert gate.running == 0 and gate.waiting == 0


async def test_other_calls_leave_the_reserved_places_to_priority_calls_which_are_refused_past_the_line():
    go = threading.Event()
    gate = ThreadGate("test-lanes", running=lambda: 1, waiting=lambda: 4, reserved=lambda: 2)
    calls = [asyncio.create_task(gate.run(go.wait, 60)) for _ in range(3)]  # one running, two waiting
    await support.until(lambda: gate.running == 1 and gate.waiting == 2, what="the others' part of the line full")
    with pytest.raises(GateFull) as refusal:
        await gate.run(go.wait, 60)
    assert refusal.value.retry_after >= 1
    calls += [asyncio.create_task(gate.run(go.wait, 60, priority=True)) for _ in range(2)]
    await support.until(lambda: gate.waiting_priority == 2, what="the reserved places taken")
    for priority in (True, False):  # the whole line is full: refused, whichever lane
        with pytest.raises(GateFull):
            await gate.run(go.wait, 60, priority=priority)
    go.set()
    assert await asyncio.gather(*calls) == [True] * 5
    assert gate.running == 0 and gate.waiting == 0

    # Priority calls may also take the others' free places, and the others cannot take them back.
    go.clear()
    calls = [asyncio.create_task(gate.run(go.wait, 60, priority=True)) for _ in range(5)]
    await support.until(lambda: gate.running == 1 and gate.waiting_priority == 4,
                        what="the line full of priority calls")
    with pytest.raises(GateFull):
        await gate.run(go.wait, 60)
    go.set()
    assert await asyncio.gather(*calls) == [True] * 5


async def test_a_turn_given_back_goes_to_the_next_in_line_and_is_taken_again_first():
    admission = Admission(1, 30)
    turn = await admission.enter()
    lent = turns.current_turn.set(turn)
    try:
        later = asyncio.create_task(admission.enter())
        await support.until(lambda: admission.waiting == 1, what="a request in line")
        hashed = asyncio.Event()
        gave_back = asyncio.Event()

        async def hash_without_the_turn() -> None:
            async with turns.given_back():
                gave_back.set()
                await hashed.wait()

        borrower = asyncio.create_task(hash_without_the_turn())  # the task sees the request's turn
        other = await later  # it got the turn given back
        await gave_back.wait()
        after = asyncio.create_task(admission.enter())
        await support.until(lambda: admission.waiting == 1, what="a new arrival in line")
        hashed.set()
        await support.until(lambda: admission.waiting == 2, what="the borrower back in line")
        other.release()  # the borrower goes first: the new arrival still waits
        await borrower
        assert not turn.done and admission.waiting == 1 and not after.done()
        turn.release()
        (await after).release()
    finally:
        turns.current_turn.reset(lent)
    assert admission._inside == 0
