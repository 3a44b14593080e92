"""The home page's cache: served without a query while nothing changes, dropped the moment something does."""

import asyncio

import pytest

from events.registration import services as registration_services
from events.rules.permissions import Actor
from events.staff import services as staff_services
from hyperion import db, pagecache
from tests import factories, support


async def _statements_during(coroutine) -> int:
    with support.engine_events("before_cursor_execute") as statements:
        await coroutine
    return len(statements)


async def test_a_repeated_home_page_runs_no_query(async_client, cache_on):
    await factories.event(association_id=await factories.association(), title="Soirée")
    first = await async_client.get("/?category=party")
    assert "Soirée" in first.text
    assert await _statements_during(async_client.get("/?category=party")) == 0
    assert await _statements_during(async_client.get("/?category=sport")) > 0  # other filters: other entry


async def test_a_registration_refreshes_the_seats_shown(async_client, cache_on):
    event_id = await factories.event(association_id=await factories.association(), capacity=2)
    assert "2 seats left" in (await async_client.get("/", headers={"Accept-Language": "en"})).text
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event_id, user_id=await factories.user())
    assert "1 seat left" in (await async_client.get("/", headers={"Accept-Language": "en"})).text


async def test_a_cancellation_by_staff_shows_at_once(async_client, cache_on):
    association_id = await factories.association()
    event_id = await factories.event(association_id=association_id, title="Concert")
    staff = Actor(await factories.user(email="staff@etu.test", is_staff=True), True, {})
    assert "Annulé" not in (await async_client.get("/")).text
    async with db.write_session() as session:
        await staff_services.event_transition(session, actor=staff, event_id=event_id, action="cancel",
                                              reason="Pluie")
    assert "Annulé" in (await async_client.get("/")).text


async def test_languages_are_cached_apart(async_client, cache_on):
    await factories.event(association_id=await factories.association())
    assert "Upcoming events" in (await async_client.get("/", headers={"Accept-Language": "en"})).text
    assert "Événements à venir" in (await async_client.get("/", headers={"Accept-Language": "fr"})).text


class _Clock:
    """The page cache's clock, moved by the test: ages do not depend on how fast the machine runs."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    from types import SimpleNamespace

    fake = _Clock()
    monkeypatch.setattr(pagecache, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


async def test_entries_expire(async_client, cache_on, settings, clock):
    settings.PAGE_CACHE_SECONDS = 30
    # raw: approving through the services announces a change that empties the page cache,
    # perhaps after this test's first request.
    await support.event_create(association_id=await factories.association())
    await async_client.get("/")
    clock.now += 29
    assert await _statements_during(async_client.get("/")) == 0
    clock.now += 2
    assert await _statements_during(async_client.get("/")) > 0


async def test_under_a_burst_of_changes_lists_lag_by_at_most_the_grace_period(async_client, cache_on, settings,
                                                                               clock):
    settings.PAGE_CACHE_GRACE_SECONDS = 1
    event_id = await factories.event(association_id=await factories.association(), capacity=5)
    english = {"Accept-Language": "en"}
    assert "5 seats left" in (await async_client.get("/", headers=english)).text
    async with db.write_session() as session:
        await registration_services.registration_create(session, event_id=event_id, user_id=await factories.user())
    clock.now += 0.9
    assert "5 seats left" in (await async_client.get("/", headers=english)).text  # within the grace period
    clock.now += 0.2
    assert "4 seats left" in (await async_client.get("/", headers=english)).text  # never later than that


class _Build:
    """A fragment's build that holds until released, counting how often it ran."""

    def __init__(self, value: bytes, *, fails: bool = False, held: bool = True) -> None:
        self.value, self.fails, self.runs = value, fails, 0
        self.started, self.release = asyncio.Event(), asyncio.Event()
        if not held:
            self.release.set()

    async def __call__(self) -> bytes:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        if self.fails:
            raise ConnectionError("the database went away")
        return self.value


async def test_simultaneous_misses_of_a_fragment_build_it_once(cache_on):
    """A calendar month costs ~40 ms of CPU to build: the requests that miss it while it is built wait for
    that build rather than each building their own."""
    build = _Build(b"<table>month</table>")
    first = asyncio.ensure_future(pagecache.fragment(("month",), build))
    await build.started.wait()
    others = [asyncio.ensure_future(pagecache.fragment(("month",), build)) for _ in range(5)]
    build.release.set()
    assert await asyncio.gather(first, *others) == [b"<table>month</table>"] * 6
    assert build.runs == 1
    assert await pagecache.fragment(("month",), _Build(b"built again", held=False)) == b"<table>month</table>"  # kept


async def test_while_a_changed_fragment_is_built_again_the_others_get_the_previous_one(cache_on, clock):
    assert await pagecache.fragment(("month",), _Build(b"4 seats left", held=False)) == b"4 seats left"
    pagecache.invalidate([1])  # a registration: the lists changed
    clock.now += 0.1
    after = _Build(b"3 seats left")
    rebuilding = asyncio.ensure_future(pagecache.fragment(("month",), after))
    await after.started.wait()
    # Another request meanwhile: the previous fragment, without waiting or building.
    assert await pagecache.fragment(("month",), _Build(b"built again", held=False)) == b"4 seats left"
    after.release.set()
    assert await rebuilding == b"3 seats left"
    assert await pagecache.fragment(("month",), _Build(b"built again", held=False)) == b"3 seats left"
    assert after.runs == 1


async def test_when_a_build_fails_the_requests_waiting_for_it_build_their_own(cache_on):
    failing = _Build(b"never", fails=True)
    first = asyncio.ensure_future(pagecache.fragment(("month",), failing))
    await failing.started.wait()
    second_build = _Build(b"<table>month</table>", held=False)
    second = asyncio.ensure_future(pagecache.fragment(("month",), second_build))
    failing.release.set()
    with pytest.raises(ConnectionError):
        await first  # its own error, for its own request
    assert await second == b"<table>month</table>"
    assert second_build.runs == 1
