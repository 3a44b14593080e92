"""The schema protects the data by itself: constraints hold whatever the code above them does."""

from datetime import timedelta

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError, StatementError

from events.models import Event, EventStatus, Registration, RegistrationStatus, User, UTCDateTime, utcnow
from tests import factories, support

# The rows here are inserted directly (tests/support.py), past the services: what is tested is what the
# database refuses by itself (so tests/test_suite_rules.py asks no `# raw:` comment of this file).


async def test_one_registration_per_user_and_event_is_enforced_by_the_database(session):
    association_id = await support.association_create()
    event_id = await support.event_create(association_id=association_id)
    user_id = await support.user_create()
    # raw: the second row is one the service refuses itself; the test is that the database does too
    await support.registration_create_raw(event_id=event_id, user_id=user_id)
    with pytest.raises(IntegrityError):
        await support.registration_create_raw(event_id=event_id, user_id=user_id,
                                              status=RegistrationStatus.WAITLISTED)
    rows = (await session.execute(select(Registration.status))).scalars().all()
    assert rows == [RegistrationStatus.CONFIRMED]


async def test_an_email_belongs_to_one_account(session):
    await support.user_create(email="alice@etu.test")
    with pytest.raises(IntegrityError):
        await support.user_create(email="alice@etu.test", display_name="Other Alice")


async def test_an_event_cannot_end_before_it_starts(session):
    association_id = await support.association_create()
    with pytest.raises(IntegrityError):
        await support.event_create(association_id=association_id, hours=-1)
    assert (await session.execute(select(Event.id))).first() is None


async def test_capacity_cannot_be_negative(session):
    association_id = await support.association_create()
    with pytest.raises(IntegrityError):
        await support.event_create(association_id=association_id, capacity=-1)


async def test_an_unknown_status_is_refused_before_and_by_the_database(session):
    association_id = await support.association_create()
    with pytest.raises(StatementError):
        await support.event_create(association_id=association_id, status="published")
    # Past the Python-side check too: the CHECK constraint in the database refuses it.
    from sqlalchemy import text
    starts = utcnow() + timedelta(days=1)
    with pytest.raises(IntegrityError):
        async with session.begin():
            await session.execute(
                text("INSERT INTO events (slug, title, description, association_id, category, location, "
                     "starts_at, ends_at, all_day, status, decision_reason, sequence, created_at, updated_at) "
                     "VALUES ('x', 'x', '', :a, 'party', '', :s, :s, false, 'published', '', 0, :s, :s)"
                ).bindparams(bindparam("s", type_=UTCDateTime())),
                {"a": association_id, "s": starts},
            )


async def test_deleting_an_event_removes_its_registrations(session):
    association_id = await support.association_create()
    event_id = await support.event_create(association_id=association_id)
    user_id = await support.user_create()
    await factories.registration(event_id=event_id, user_id=user_id)
    from sqlalchemy import delete
    async with session.begin():
        await session.execute(delete(Event).where(Event.id == event_id))
    assert (await session.execute(select(Registration.id))).first() is None


async def test_datetimes_come_back_aware_in_utc_and_naive_ones_are_refused(session):
    association_id = await support.association_create()
    starts = utcnow().replace(microsecond=0) + timedelta(days=3)
    event_id = await support.event_create(association_id=association_id, starts_at=starts)
    stored = (await session.execute(select(Event.starts_at).where(Event.id == event_id))).scalar_one()
    assert stored == starts and stored.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive datetime"):
        await support.event_create(association_id=association_id, slug="naive",
                                   starts_at=starts.replace(tzinfo=None))


async def test_lazy_loading_is_impossible_so_no_query_runs_implicitly(session):
    association_id = await support.association_create()
    await support.event_create(association_id=association_id)
    event = (await session.execute(select(Event))).scalar_one()
    from sqlalchemy.exc import InvalidRequestError
    with pytest.raises(InvalidRequestError, match="lazy"):
        _ = event.association
    await session.rollback()


async def test_event_status_round_trips_as_enum(session):
    association_id = await support.association_create()
    await support.event_create(association_id=association_id, status=EventStatus.SUBMITTED)
    assert (await session.execute(select(Event.status))).scalar_one() is EventStatus.SUBMITTED
    await session.rollback()  # end the read's implicit transaction before writing
    async with session.begin():
        await session.execute(insert(User), {"email": "b@etu.test", "display_name": "B", "password_hash": "!"})
    assert (await session.execute(select(User.is_active).where(User.email == "b@etu.test"))).scalar_one() is True
