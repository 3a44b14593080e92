"""The built-feeds cache under concurrency: another request may evict an entry at any await."""

import contextlib

from icalendar import Calendar

from events.views import feeds as feed_views
from hyperion import db
from tests import factories


async def test_a_feed_evicted_while_its_request_reads_is_still_served_whole(async_client, monkeypatch):
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="gala", title="Gala")
    first = await async_client.get("/feeds/events.ics")
    assert first.status_code == 200
    real_read_connection = db.read_connection

    @contextlib.asynccontextmanager
    async def read_connection_then_evicted():
        async with real_read_connection() as connection:
            yield connection
        feed_views._built.clear()  # another request's feeds pushed this one out meanwhile

    monkeypatch.setattr(db, "read_connection", read_connection_then_evicted)
    again = await async_client.get("/feeds/events.ics")
    assert again.status_code == 200
    assert [str(vevent["SUMMARY"]) for vevent in Calendar.from_ical(again.content).events] == ["Gala"]


def test_built_feeds_are_bounded_in_bytes_the_least_recently_used_going_first():
    """The worker's memory for built feeds has a bound in bytes, not only in number: bodies of changed feeds
    stay until pushed out, and a public feed can weigh hundreds of kB. The newest body always stays, even
    alone above the bound (a big site's feed of every event is the costliest to build again)."""
    built = feed_views._BuiltFeeds(max_entries=100, max_bytes=1000)
    for name in "abcd":
        built.put((name,), b"x" * 300)
    assert built.get(("a",)) is None and built.size == 900  # a went first: 1,200 bytes were above the bound
    assert built.get(("b",)) is not None  # now the most recently used
    built.put(("e",), b"y" * 300)
    assert [key for key in built.bodies] == [("d",), ("b",), ("e",)]  # c was the least recently used
    built.put(("huge",), b"z" * 5000)
    assert list(built.bodies) == [("huge",)] and built.size == 5000
    built.put(("small",), b"s" * 10)
    assert list(built.bodies) == [("small",)] and built.size == 10
    built.clear()
    assert built.size == 0 and built.get(("small",)) is None
