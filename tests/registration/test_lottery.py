"""Openings by lottery: entries during the window (no seat, no lock, one per student), one draw when it
closes (seats at random among the entries, the rest in line in drawn order, reproducible from its seed,
audited), asks after it at the end of the line, and the pages and messages that tell the students."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import AsyncClient
from sqlalchemy import select, text

from events.catalog import queries as catalog_queries
from events.models import AuditEntry, Event, OutboxMessage, Registration, RegistrationStatus, utcnow
from events.registration import lottery
from events.registration import services as registration_services
from events.rules import lottery as lottery_rules
from hyperion import db
from tests import factories, support

ENTERED, CONFIRMED, WAITLISTED = RegistrationStatus.ENTERED, RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED


async def students(count: int, prefix: str = "s") -> list[int]:
    return [await factories.user(email=f"{prefix}{n}@etu.test", display_name=f"Student {n}") for n in range(count)]


async def ask(event_id: int, user_id: int) -> registration_services.RegistrationOutcome:
    async with db.write_session() as session:
        return await registration_services.registration_create(session, event_id=event_id, user_id=user_id)


async def states(event_id: int) -> dict[int, tuple[RegistrationStatus, object]]:
    async with db.read_session() as session:
        rows = await session.execute(select(Registration.user_id, Registration.status, Registration.queued_at)
                                     .where(Registration.event_id == event_id))
        return {row.user_id: (row.status, row.queued_at) for row in rows}


async def draw(event_id: int, **kwargs) -> registration_services.DrawOutcome | None:
    async with db.write_session() as session:
        return await registration_services.lottery_draw(session, event_id=event_id, **kwargs)


async def test_an_ask_in_the_window_is_an_entry_that_takes_no_seat_and_a_second_ask_gets_the_same_entry():
    event_id = await factories.lottery_event(capacity=1)
    alice, bob = await students(2)
    first = await factories.lottery_entry("gala", alice)
    assert first.status == ENTERED
    assert (await ask(event_id, bob)).status == ENTERED  # the locked path (a stale page) enters too
    assert await factories.lottery_entry("gala", alice) is None  # the fast path writes nothing more...
    again = await ask(event_id, alice)  # ...and the locked path answers with her entry
    assert (again.status, again.registration_id) == (ENTERED, first.registration_id)
    assert {user: state for user, (state, _when) in (await states(event_id)).items()} == {alice: ENTERED, bob: ENTERED}
    async with db.read_connection() as connection:  # the one seat is still free: entries are not seats
        detail = await catalog_queries.event_detail(connection, slug="gala", viewer_id=alice)
    assert (detail.seats.taken, detail.seats.waitlisted, detail.mine.status) == (0, 0, ENTERED)


async def test_an_ask_before_the_opening_is_refused_with_the_opening_time():
    event_id = await factories.lottery_event(opened_minutes_ago=-90)  # opens in 90 minutes
    (alice,) = await students(1)
    with pytest.raises(registration_services.RegistrationNotYetOpen) as refused:
        await ask(event_id, alice)
    assert abs(refused.value.opens_at - (utcnow() + timedelta(minutes=90))) < timedelta(minutes=1)
    assert ":" in refused.value.message and refused.value.message != registration_services.RegistrationClosed.message
    assert await factories.lottery_entry("gala", alice) is None
    assert await states(event_id) == {}


async def test_the_draw_gives_the_seats_at_random_and_the_line_in_drawn_order_reproducibly_once(session):
    event_id = await factories.lottery_event(capacity=3)
    entrants = await students(8)
    for user_id in entrants:
        await factories.lottery_entry("gala", user_id)
    assert await draw(event_id) is None  # the window is still open: nothing to draw
    await factories.lottery_window_close(event_id)
    outcome = await draw(event_id)
    assert (outcome.entries, outcome.confirmed, outcome.waitlisted) == (8, 3, 5)
    assert await draw(event_id) is None  # once

    # The order is the one the recorded seed gives: seats to the first three, the line in that order.
    order = lottery_rules.drawn_order(entrants, outcome.seed)
    after = await states(event_id)
    assert [after[user][0] for user in order] == [CONFIRMED] * 3 + [WAITLISTED] * 5
    line = sorted((when, user) for user, (state, when) in after.items() if state == WAITLISTED)
    assert [user for _when, user in line] == order[3:]
    event = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
    assert (event.lottery_seed, event.lottery_drawn_by_id) == (outcome.seed, None)
    audit = (await session.execute(select(AuditEntry).where(AuditEntry.action == "lottery.drawn"))).scalar_one()
    assert audit.changes["seed"] == [None, str(outcome.seed)] and audit.changes["entries"] == [None, 8]
    # Each student hears the result: the usual confirmation, or the place in line.
    kinds = Counter((await session.execute(select(OutboxMessage.kind).where(
        OutboxMessage.event_id == event_id, OutboxMessage.kind.like("registration.%")))).scalars())
    assert kinds == {"registration.confirmed": 3, "registration.waitlisted": 5}


async def test_the_draw_order_depends_only_on_the_entries_and_the_seed():
    assert lottery_rules.drawn_order([5, 1, 3, 2, 4], 42) == lottery_rules.drawn_order({4, 3, 2, 1, 5}, 42)
    orders = {tuple(lottery_rules.drawn_order(range(1, 30), seed)) for seed in range(20)}
    assert len(orders) > 1  # another seed, another order


async def test_an_ask_after_the_window_draws_first_then_joins_the_end_of_the_line():
    event_id = await factories.lottery_event(capacity=2)
    entrants = await students(3)
    for user_id in entrants:
        await factories.lottery_entry("gala", user_id)
    await factories.lottery_window_close(event_id)
    (late,) = await students(1, prefix="late")
    outcome = await ask(event_id, late)  # nobody drew yet: this ask runs the draw, then its own
    assert (outcome.status, outcome.waitlist_position) == (WAITLISTED, 2)
    after = await states(event_id)
    assert Counter(state for state, _when in after.values()) == {CONFIRMED: 2, WAITLISTED: 2}
    assert max(after.values(), key=lambda state: state[1]) == after[late]  # last in line
    assert await draw(event_id) is None


async def test_a_withdrawn_entry_is_not_drawn():
    event_id = await factories.lottery_event(capacity=5)
    alice, bob = await students(2)
    await factories.lottery_entry("gala", alice)
    await factories.lottery_entry("gala", bob)
    left = await factories.registration_leave(event_id=event_id, user_id=alice)
    assert left.previous_status == ENTERED and left.promoted_user_ids == ()
    await factories.lottery_window_close(event_id)
    assert (await draw(event_id)).entries == 1
    assert {user: state for user, (state, _when) in (await states(event_id)).items()} == {
        alice: RegistrationStatus.CANCELLED, bob: CONFIRMED}


async def test_concurrent_draws_draw_once():
    event_id = await factories.lottery_event(capacity=2)
    for user_id in await students(6):
        await factories.lottery_entry("gala", user_id)
    await factories.lottery_window_close(event_id)
    outcomes = await asyncio.gather(*(draw(event_id) for _ in range(4)))
    assert sum(outcome is not None for outcome in outcomes) == 1
    assert Counter(state for state, _when in (await states(event_id)).values()) == {CONFIRMED: 2, WAITLISTED: 4}


@pytest.mark.postgres_only
async def test_an_entry_does_not_wait_for_the_events_lock():
    """A registration batch or a draw holds the event's lock (FOR NO KEY UPDATE): an entry, one INSERT whose
    foreign key only needs KEY SHARE, is written meanwhile."""
    event_id = await factories.lottery_event()
    (alice,) = await students(1)
    async with db.get_engine().connect() as holder:
        await holder.execute(text("BEGIN"))
        await holder.execute(text("SELECT 1 FROM events WHERE id = :id FOR NO KEY UPDATE"), {"id": event_id})
        entry = await asyncio.wait_for(factories.lottery_entry("gala", alice), timeout=support.EVENT_WITHIN)
        assert entry.status == ENTERED
        await holder.execute(text("ROLLBACK"))


async def test_the_sites_drawer_draws_when_the_window_closes():
    event_id = await factories.lottery_event(capacity=1)
    (alice,) = await students(1)
    await factories.lottery_entry("gala", alice)
    drawn, next_closes = await lottery.draw_due()
    assert drawn == [] and next_closes is not None  # it knows when to look again
    await factories.lottery_window_close(event_id)
    drawer = lottery.Drawer()
    drawer.start()
    try:
        await support.until(lambda: _confirmed(event_id, alice), what="the drawer's draw")
    finally:
        await drawer.stop()


async def _confirmed(event_id: int, user_id: int) -> bool:
    return (await states(event_id)).get(user_id, (None,))[0] == CONFIRMED


@pytest.fixture
async def student_client():
    user_id = await factories.user(email="lea@etu.test", display_name="Léa")
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    await support.login(client, user_id)
    return client, user_id


@pytest.mark.usefixtures("cache_on")
async def test_the_event_page_offers_the_draw_records_the_entry_and_shows_the_result(student_client):
    client, lea = student_client
    event_id = await factories.lottery_event(capacity=1)
    page = (await client.get("/events/gala/")).content.decode()
    assert "Opening by lottery" in page and "Enter the draw" in page
    response = await client.post("/events/gala/register/")
    assert response.status_code == 302
    page = (await client.get(response["Location"])).content.decode()
    assert "Your entry for the draw is recorded" in page and "Withdraw my entry" in page
    assert "Enter the draw" not in page
    await factories.lottery_window_close(event_id)
    await draw(event_id)
    page = (await client.get("/events/gala/")).content.decode()
    assert "You are registered: your place is confirmed." in page
    assert "The seats were drawn at random" in page
    assert "Entered in the draw" not in (await client.get("/me/events/")).content.decode()


async def test_an_ask_is_one_insert_without_the_lock_even_when_the_page_came_from_another_process(student_client):
    """The drawer's last look tells every process which events are in a lottery window: a student whose event
    page was served elsewhere (nothing kept here) still enters without the event's lock."""
    client, lea = student_client
    event_id = await factories.lottery_event()
    await lottery.draw_due()  # what the drawer does at least every LOTTERY_DRAWER_INTERVAL seconds
    assert lottery.undrawn("gala").id == event_id
    with support.engine_events("before_cursor_execute") as statements:
        response = await client.post("/events/gala/register/")
    assert response.status_code == 302
    sent = " ".join(statements).upper()
    assert "INSERT INTO REGISTRATIONS" in sent and "FOR UPDATE" not in sent and "FOR NO KEY UPDATE" not in sent
    assert (await states(event_id))[lea][0] == ENTERED
    await factories.lottery_window_close(event_id)
    await lottery.draw_due()
    assert lottery.undrawn("gala") is None  # drawn: forgotten


async def test_a_rush_of_entries_is_written_together_and_each_student_gets_their_own_entry():
    event_id = await factories.lottery_event(capacity=5)
    crowd = await students(40)
    async with db.read_connection() as connection:
        detail = await catalog_queries.event_detail(connection, slug="gala", viewer_id=None)

    async def one(user_id: int):
        async with db.write_session() as session:
            return await lottery.lottery_enter(session, event=detail, event_id=event_id, user_id=user_id)

    with support.engine_events("before_cursor_execute") as statements:
        answers = await asyncio.gather(*(one(user_id) for user_id in crowd + crowd[:5]))  # five double clicks
    inserts = sum(1 for statement in statements if statement.upper().startswith("INSERT"))
    assert inserts < len(crowd)  # entries that arrived together shared their INSERT
    firsts = answers[:len(crowd)]
    assert all(answer is not None and answer.status == ENTERED for answer in firsts)
    assert len({answer.registration_id for answer in firsts}) == len(crowd)
    assert all(answer is None for answer in answers[len(crowd):])  # the second click writes nothing
    assert Counter(state for state, _when in (await states(event_id)).values()) == {ENTERED: len(crowd)}


async def _lock_waiters(event_id: int) -> int:
    async with db.get_engine().connect() as connection:
        return (await connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"))).scalar_one()


@pytest.mark.postgres_only
async def test_a_draw_waits_for_an_entry_being_written_and_counts_it(database_url):
    """An entry holds FOR KEY SHARE on the event while it is written (the seat writers' lock lets it through,
    a draw's does not): the draw waits for it, and draws it."""
    event_id = await factories.lottery_event(capacity=1)
    (alice,) = await students(1)
    await factories.lottery_window_close(event_id)
    in_flight = await _raw_connection(database_url)
    try:
        async with in_flight.transaction():
            await in_flight.execute("SELECT 1 FROM events WHERE id = $1 FOR KEY SHARE", event_id)
            # raw: an entry caught mid-write, its transaction held open (the service's would commit at once)
            await in_flight.execute(
                "INSERT INTO registrations (event_id, user_id, status, queued_at, created_at, updated_at) "
                "VALUES ($1, $2, 'entered', now(), now(), now())", event_id, alice)
            drawing = asyncio.create_task(draw(event_id))
            await support.until(lambda: _lock_waiters(event_id), what="the draw waiting for the entry")
        outcome = await drawing
    finally:
        await in_flight.close()
    assert outcome.entries == 1
    assert (await states(event_id))[alice][0] == CONFIRMED


@pytest.mark.postgres_only
async def test_an_entry_that_comes_during_the_draw_writes_nothing(database_url):
    """While a draw holds the event (FOR UPDATE), an entry waits; the event is then drawn, so its guard
    lets nothing through (the view then takes the locked path: a late ask, at the end of the line)."""
    event_id = await factories.lottery_event()
    (alice,) = await students(1)
    async with db.read_connection() as connection:
        detail = await catalog_queries.event_detail(connection, slug="gala", viewer_id=None)
    the_draw = await _raw_connection(database_url)
    try:
        async with the_draw.transaction():
            await the_draw.execute("SELECT 1 FROM events WHERE id = $1 FOR UPDATE", event_id)
            # raw: a draw caught mid-way, its transaction held open (the service's would commit at once)
            await the_draw.execute("UPDATE events SET lottery_drawn_at = now(), lottery_seed = 1 WHERE id = $1",
                                   event_id)

            async def entering():
                async with db.write_session() as session:
                    return await lottery.lottery_enter(session, event=detail, event_id=event_id, user_id=alice)

            entry = asyncio.create_task(entering())
            await support.until(lambda: _lock_waiters(event_id), what="the entry waiting for the draw")
        assert await entry is None
    finally:
        await the_draw.close()
    assert await states(event_id) == {}


async def _raw_connection(database_url: str):
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database,
                                 statement_cache_size=0)
