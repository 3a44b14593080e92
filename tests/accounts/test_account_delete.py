"""Close my account: with their password, a student's places at events to come are released (the next in
line promoted), their personal data goes and they are logged out everywhere; past registrations stay,
anonymised; a wrong password changes nothing; a staff account is not closed this way."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from sqlalchemy import select, update

from events.accounts import auth
from events.models import AuditEntry, Event, Membership, Registration, RegistrationStatus, Role, User, utcnow
from hyperion import db
from tests import factories, support

PASSWORD = "Ptérodactyle-2030!"  # noqa: S105 - a test account's


async def student_with_a_seat_and_a_past() -> tuple[int, int, int, int]:
    organiser = await factories.association(slug="bde", name="BDE")
    coming = await factories.event(association_id=organiser, slug="gala", title="Gala", capacity=1,
                                   unregistration_closes_at=utcnow() + timedelta(minutes=1))
    past = await factories.event(association_id=organiser, slug="old", title="Old")
    lea = await factories.user(email="lea@etu.test", display_name="Léa", promo=2028,
                               password_hash=await auth.password_hash(PASSWORD))
    waiting = await factories.user(email="next@etu.test", display_name="Next")
    await factories.member(association_id=organiser, user_id=lea, role=Role.MEMBER)
    for event_id, user_id in ((coming, lea), (coming, waiting), (past, lea)):
        await factories.registration(event_id=event_id, user_id=user_id)
    # raw: time passes ("old" took place; it is too late to leave "gala"): registration refuses a past event,
    # and no service moves the clock.
    async with db.write_session() as session, session.begin():
        ended = utcnow() - timedelta(days=3)
        await session.execute(update(Event).where(Event.id == past).values(starts_at=ended - timedelta(hours=2),
                                                                           ends_at=ended))
        await session.execute(update(Event).where(Event.id == coming).values(
            unregistration_closes_at=utcnow() - timedelta(minutes=1)))
    return lea, waiting, coming, past


async def test_closing_releases_the_seats_to_come_and_deletes_the_personal_data(session):
    lea, waiting, coming, past = await student_with_a_seat_and_a_past()
    client = await support.client_as(lea)
    page = (await client.get("/account/delete/")).content.decode()
    assert "Close my account" in page and "cannot be undone" in page
    response = await client.post("/account/delete/", {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    statuses = dict((await session.execute(select(Registration.user_id, Registration.status)
                                           .where(Registration.event_id == coming))).all())
    assert statuses == {lea: RegistrationStatus.CANCELLED, waiting: RegistrationStatus.CONFIRMED}
    kept = (await session.execute(select(Registration.status).where(Registration.event_id == past))).scalar_one()
    assert kept == RegistrationStatus.CONFIRMED  # the past event keeps its count
    user = (await session.execute(select(User).where(User.id == lea))).scalar_one()
    assert user.email.startswith(f"deleted-{lea}@")
    assert (user.display_name != "Léa", user.promo, user.is_active, user.anonymised_at is not None) == \
        (True, None, False, True)
    assert (await session.execute(select(Membership.id).where(Membership.user_id == lea))).first() is None
    audit = (await session.execute(select(AuditEntry).where(AuditEntry.action == "account.deleted"))).scalar_one()
    assert audit.object_id is None and audit.changes == {"released_registrations": 1}
    # Logged out, here and in every other browser: the old session is gone.
    assert settings.SESSION_COOKIE_NAME in response.cookies
    again = await client.get("/me/events/")
    assert again.status_code == 302 and "/account/login/" in again["Location"]


async def test_a_wrong_password_changes_nothing(session):
    lea, waiting, coming, _past = await student_with_a_seat_and_a_past()
    response = await (await support.client_as(lea)).post("/account/delete/", {"password": "not-it"})
    assert response.status_code == 400 and "password" in response.content.decode().lower()
    assert (await session.execute(select(User.is_active).where(User.id == lea))).scalar_one() is True
    status = (await session.execute(select(Registration.status).where(
        Registration.event_id == coming, Registration.user_id == lea))).scalar_one()
    assert status == RegistrationStatus.CONFIRMED


async def test_a_staff_account_is_not_closed_here(session):
    staff = await factories.user(email="staff@etu.test", is_staff=True,
                                 password_hash=await auth.password_hash(PASSWORD))
    response = await (await support.client_as(staff)).post("/account/delete/", {"password": PASSWORD})
    assert response.status_code == 400
    assert "staff account is closed by another staff member" in response.content.decode()
    assert (await session.execute(select(User.is_active).where(User.id == staff))).scalar_one() is True
