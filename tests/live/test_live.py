"""The live seat counter: server-sent events that follow registrations as they commit."""

import asyncio
import json
import re
import time

import asyncpg
import httpx
import pytest
from django.conf import settings
from sqlalchemy import make_url

from events.live import broadcast
from events.models import EventStatus
from events.registration import services as registration_services
from hyperion import db
from tests import factories, support


async def _register(event_id: int, user_id: int) -> None:
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event_id, user_id=user_id)


def _events(chunks: str) -> list[dict]:
    return [json.loads(line[len("data: "):]) for line in chunks.splitlines() if line.startswith("data: ")]


class _Stream:
    """An open live-seat stream read from the test client: the values received so far, and waits."""

    def __init__(self, response) -> None:
        self.chunks = response.streaming_content.__aiter__()
        self.received = ""

    @property
    def values(self) -> list[dict]:
        return _events(self.received)

    async def until(self, predicate, within: float = support.EVENT_WITHIN) -> dict:
        while not self.values or not predicate(self.values[-1]):
            self.received += (await asyncio.wait_for(anext(self.chunks), timeout=within)).decode()
        return self.values[-1]

    async def next_value(self, within: float = support.EVENT_WITHIN) -> dict:
        count = len(self.values)
        return await self.until(lambda _news: len(self.values) > count, within)


async def test_event_page_carries_the_live_counter_and_its_script(async_client):
    await factories.event(association_id=await factories.association(), slug="gala", capacity=2)
    page = (await async_client.get("/events/gala/")).text
    assert 'data-live-seats="/events/gala/seats/?language=fr"' in page and "/static/js/live-seats.js" in page


async def test_stream_sends_the_count_then_each_change_until_full(async_client):
    event_id = await factories.event(association_id=await factories.association(), slug="gala",
                                          capacity=2)
    response = await async_client.get("/events/gala/seats/")
    assert response["Content-Type"].startswith("text/event-stream")
    stream = _Stream(response)
    first = await stream.next_value()
    assert first == {"event_id": event_id, "capacity": 2, "taken": 0, "waitlisted": 0, "cancelled": False,
                     "seats_left": 2, "full": False, "text": "2 places restantes sur 2"}
    students = [await factories.user(email=f"s{n}@etu.test") for n in range(3)]
    await _register(event_id, students[0])
    assert (await stream.until(lambda news: news["taken"] == 1))["seats_left"] == 1
    await _register(event_id, students[1])
    await _register(event_id, students[2])
    last = await stream.until(lambda news: news["waitlisted"] == 1)
    assert last["full"] and last["seats_left"] == 0


async def test_a_burst_of_registrations_reaches_an_open_page_as_a_few_values_the_last_one_exact(
        async_client, settings):
    settings.LIVE_SEATS_INTERVAL = 1.0
    event_id = await factories.event(association_id=await factories.association(), slug="gala",
                                          capacity=5)
    students = [await factories.user(email=f"s{n}@etu.test") for n in range(12)]
    response = await async_client.get("/events/gala/seats/")
    stream = _Stream(response)
    await stream.next_value()
    started = time.monotonic()
    for student in students:
        await _register(event_id, student)
    burst = time.monotonic() - started
    await stream.until(lambda news: news["waitlisted"] == 7)
    values = stream.values[1:]
    assert values[-1] == {"event_id": event_id, "capacity": 5, "taken": 5, "waitlisted": 7, "cancelled": False,
                          "seats_left": 0, "full": True,
                          "text": "Complet (5 places), liste d'attente ouverte · 7 en liste d'attente"}
    # One value at once, "full" at once, then at most one per second of the burst, plus the trailing one.
    assert len(values) <= 3 + int(burst), (len(values), burst)
    assert len(values) < len(students)


async def test_the_event_filling_up_reaches_open_pages_at_once_whatever_the_pacing(async_client, settings):
    settings.LIVE_SEATS_INTERVAL = 30.0
    # raw: approving through the services hands out a value, and the test needs a quiet spell first.
    event_id = await support.event_create(association_id=await factories.association(), slug="gala",
                                          capacity=2)
    students = [await factories.user(email=f"s{n}@etu.test") for n in range(3)]
    response = await async_client.get("/events/gala/seats/")
    stream = _Stream(response)
    assert (await stream.next_value(5))["taken"] == 0
    await _register(event_id, students[0])
    assert (await stream.next_value(5))["seats_left"] == 1  # after a quiet spell: at once
    await _register(event_id, students[1])
    assert (await stream.next_value(2))["full"] is True  # full: at once, though the interval is 30 s
    await _register(event_id, students[2])
    with pytest.raises(TimeoutError):  # one more in line: waits for the next hand-out (paced)
        await stream.next_value(1)


async def test_a_stream_ends_after_its_maximum_duration_and_lets_go_of_its_subscription(async_client, settings):
    settings.SSE_MAX_SECONDS = 1
    event_id = await factories.event(association_id=await factories.association(), slug="gala")
    before = set(broadcast.broadcaster.subscribers.get(event_id, ()))
    response = await async_client.get("/events/gala/seats/")
    started = time.monotonic()
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert 0.9 < time.monotonic() - started < 5
    assert _events(body.decode())[0]["event_id"] == event_id
    assert set(broadcast.broadcaster.subscribers.get(event_id, ())) == before  # the finished stream let go


async def test_the_counter_speaks_the_language_of_its_page_with_its_plural_forms(async_client):
    """The French page carries the French counter and opens a French stream, whose values come as French
    text (singular for one, as French says it for 0 and 1); an English page gets English values."""
    event_id = await factories.event(association_id=await factories.association(), slug="gala",
                                          capacity=2)
    french = (await async_client.get("/events/gala/", headers={"Accept-Language": "fr"})).text
    assert "2 places restantes sur 2" in french
    assert 'data-live-seats="/events/gala/seats/?language=fr"' in french
    english = (await async_client.get("/events/gala/", headers={"Accept-Language": "en"})).text
    assert "2 seats left of 2" in english and 'data-live-seats="/events/gala/seats/?language=en"' in english

    # The stream follows the page that opened it, not the request's own language (another tab may have
    # switched the language cookie since the page was loaded).
    in_french = _Stream(await async_client.get("/events/gala/seats/?language=fr",
                                               headers={"Accept-Language": "en"}))
    in_english = _Stream(await async_client.get("/events/gala/seats/?language=en"))
    assert (await in_french.next_value())["text"] == "2 places restantes sur 2"
    assert (await in_english.next_value())["text"] == "2 seats left of 2"
    students = [await factories.user(email=f"s{n}@etu.test") for n in range(3)]
    await _register(event_id, students[0])
    assert (await in_french.until(lambda news: news["taken"] == 1))["text"] == "1 place restante sur 2"
    assert (await in_english.until(lambda news: news["taken"] == 1))["text"] == "1 seat left of 2"
    for student in students[1:]:
        await _register(event_id, student)
    assert (await in_french.until(lambda news: news["waitlisted"] == 1))["text"] == (
        "Complet (2 places), liste d'attente ouverte · 1 en liste d'attente")
    assert (await in_english.until(lambda news: news["waitlisted"] == 1))["text"] == (
        "Full (2 seats), waitlist open · 1 on the waitlist")


async def test_a_stream_asked_for_an_unknown_language_speaks_the_request_s(async_client):
    await factories.event(association_id=await factories.association(), slug="gala", capacity=3)
    stream = _Stream(await async_client.get("/events/gala/seats/?language=xx", headers={"Accept-Language": "en"}))
    assert (await stream.next_value())["text"] == "3 seats left of 3"


def test_the_counter_script_holds_no_text_of_its_own():
    """Everything the live counter shows comes from the server, in the page's language (tests/plumbing/test_i18n.py
    checks that the catalog translates it): the script only copies the stream's text into the page."""
    script = (support.ROOT / "static" / "js" / "live-seats.js").read_text()
    code = "\n".join(line.split("//", 1)[0] for line in script.splitlines())
    literals = set(re.findall(r'"([^"]*)"|\'([^\']*)\'', code))
    assert {first or second for first, second in literals} <= {"use strict", "[data-live-seats]", "seats",
                                                                 "is-full", "true", "false", "string",
                                                                 "seats-changed", "number"}
    assert "textContent = news.text" in code


async def test_stream_of_an_unpublished_or_unknown_event_is_404(async_client):
    await factories.event(association_id=await factories.association(), slug="draft",
                               status=EventStatus.DRAFT)
    assert (await async_client.get("/events/draft/seats/")).status_code == 404
    assert (await async_client.get("/events/nope/seats/")).status_code == 404


@pytest.mark.postgres_only
async def test_a_registration_committed_elsewhere_reaches_open_pages_within_a_second(tmp_path):
    event_id = await factories.event(association_id=await factories.association(), slug="rush",
                                          capacity=1)
    student = await factories.user()
    with support.uvicorn_server(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            streams = []
            for _ in range(20):
                stream = client.stream("GET", "/events/rush/seats/")
                response = await stream.__aenter__()
                streams.append((stream, response.aiter_text()))

            async def next_news(chunks) -> dict:
                text = ""
                while not _events(text):
                    text += await anext(chunks)
                return _events(text)[-1]

            for _stream, chunks in streams:  # each page has its first count
                assert (await asyncio.wait_for(next_news(chunks), timeout=60))["full"] is False
            committed_at = time.monotonic()
            await _register(event_id, student)  # in this process: the news crosses by NOTIFY

            async def sees_full(chunks) -> float:
                while not (await next_news(chunks))["full"]:
                    pass
                return time.monotonic() - committed_at

            delays = await asyncio.wait_for(asyncio.gather(*(sees_full(c) for _s, c in streams)), timeout=10)
            for stream, _chunks in streams:
                await stream.__aexit__(None, None, None)
    assert max(delays) < 1.0, delays


@pytest.mark.postgres_only
async def test_open_pages_learn_the_event_is_full_while_every_pooled_connection_is_busy(tmp_path, database_url):
    """The news carries the counts, read in the registering transaction: the streams need no connection of
    the server's pool to learn them. Here the server's only pooled connection is stuck behind a lock when
    the last seat goes; the open pages still see "full" within a second."""
    association_id = await factories.association(slug="bde")
    event_id = await factories.event(association_id=association_id, slug="rush", capacity=1)
    student = await factories.user()
    url = make_url(database_url)
    name = "hyperion-live-busy-pool"
    env = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "30", "DB_APPLICATION_NAME": name}
    with support.uvicorn_server(tmp_path, env=env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            opened = [client.stream("GET", "/events/rush/seats/") for _ in range(5)]
            streams = [(await stream.__aenter__()).aiter_text() for stream in opened]

            async def next_news(chunks) -> dict:
                text = ""
                while not _events(text):
                    text += await anext(chunks)
                return _events(text)[-1]

            for chunks in streams:
                assert (await asyncio.wait_for(next_news(chunks), timeout=60))["full"] is False
            locker = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username,
                                           database=url.database)
            try:
                transaction = locker.transaction()
                await transaction.start()
                # A table no registration reads (every registration reads the event's association, for its
                # no-show rule): a request with a session cookie waits on it, holding the only connection.
                await locker.execute("LOCK TABLE auth_sessions IN ACCESS EXCLUSIVE MODE")
                stuck_page = asyncio.create_task(client.get(
                    "/associations/bde/", headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={'x' * 43}"}))
                await support.until_waiting_on_lock(database_url, name)  # the page holds the only connection
                committed_at = time.monotonic()
                await _register(event_id, student)

                async def sees_full(chunks) -> float:
                    while not (await next_news(chunks))["full"]:
                        pass
                    return time.monotonic() - committed_at

                delays = await asyncio.wait_for(asyncio.gather(*(sees_full(c) for c in streams)), timeout=10)
                assert not stuck_page.done()  # the pool was still busy when every page learnt it
            finally:
                await transaction.rollback()
                await locker.close()
            assert (await stuck_page).status_code == 200
            for stream in opened:
                await stream.__aexit__(None, None, None)
    assert max(delays) < 1.0, delays
