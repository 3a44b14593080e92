"""The connection pool hands out the connection returned last (DB_POOL_LIFO): the connections in use stay few
and warm. SQLAlchemy's asyncpg dialect prepares each statement on each connection, the first use costing a
round trip more; a pool that rotated requests through all of its connections made a registration pay several
of those on a distant database (hyperion/db.py)."""

from __future__ import annotations

from sqlalchemy import text

from hyperion import db


async def _driver_connection(connection):
    await connection.execute(text("SELECT 1"))
    return (await connection.get_raw_connection()).driver_connection


async def test_the_pool_hands_out_the_connection_returned_last():
    async with db.read_connection() as earlier, db.read_connection() as later:
        returned_last = await _driver_connection(earlier)  # closed after `later`: back in the pool last
        returned_first = await _driver_connection(later)
    assert returned_last is not returned_first
    for _ in range(3):
        async with db.read_connection() as again:
            assert await _driver_connection(again) is returned_last
