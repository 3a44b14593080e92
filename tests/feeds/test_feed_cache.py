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
