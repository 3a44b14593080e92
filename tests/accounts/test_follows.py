"""Following an association (events/accounts/follows.py, events/notifications/changes.event_published): the
follow button on the directory and the association's page, its new events by e-mail (at once, or a weekly
digest on Monday) and in the personal feed."""

from __future__ import annotations

import re
from datetime import timedelta

import icalendar
import pytest
from django.test import AsyncClient
from sqlalchemy import select, update

from events import localtime
from events.models import Event, EventStatus, OutboxMessage, Role, utcnow
from events.notifications import mailer
from events.notifications.changes import follow_digest_time
from hyperion import db
from tests import factories, support

EN = {"Accept-Language": "en"}


async def logged_in(user_id: int) -> AsyncClient:
    client = AsyncClient()
    await support.login(client, user_id)
    return client


async def follow(client: AsyncClient, slug: str, *, following: bool = True):
    return await client.post(f"/associations/{slug}/follow/", {"follow": "yes" if following else "no",
                                                                "next": f"/associations/{slug}/"}, headers=EN)


async def submitted_event(association_id: int, slug: str, **fields) -> int:
    return await factories.event(association_id=association_id, slug=slug, title=f"Soirée {slug}",
                                 status=EventStatus.SUBMITTED, **fields)


async def messages_of(kind: str) -> list:
    async with db.read_session() as session:
        return (await session.execute(select(OutboxMessage.recipient_id, OutboxMessage.event_id,
                                             OutboxMessage.send_after, OutboxMessage.dedupe_key)
                                      .where(OutboxMessage.kind == kind).order_by(OutboxMessage.id))).all()


async def test_a_student_follows_and_stops_following_from_the_association_page_and_the_directory():
    await factories.association(slug="club", name="Club Théâtre")
    alice = await factories.user(email="alice@etu.test")
    client = await logged_in(alice)
    page = (await client.get("/associations/club/", headers=EN)).text
    assert 'action="/associations/club/follow/"' in page and ">Follow<" in page
    followed = await follow(client, "club")
    assert followed.status_code == 302 and followed["Location"] == "/associations/club/"
    page = (await client.get("/associations/club/", headers=EN)).text
    assert "You follow Club Théâtre" in page and "Following ✓ (stop)" in page
    assert "Following ✓ (stop)" in (await client.get("/associations/", headers=EN)).text
    await follow(client, "club")  # twice: still one follow
    await follow(client, "club", following=False)
    page = (await client.get("/associations/club/", headers=EN)).text
    assert "You no longer follow Club Théâtre." in page and ">Follow<" in page
    assert (await follow(client, "nowhere")).status_code == 404


async def test_visitors_are_asked_to_log_in_and_unverified_accounts_to_confirm_first():
    await factories.association(slug="club", name="Club")
    visitor = AsyncClient()
    assert "Log in to follow" in (await visitor.get("/associations/club/", headers=EN)).text
    refused = await follow(visitor, "club")
    assert refused.status_code == 302 and refused["Location"].startswith("/account/login/")
    unverified = await logged_in(await factories.user(email="new@etu.test", verified=False))
    await follow(unverified, "club")
    assert "Following ✓" not in (await unverified.get("/associations/club/", headers=EN)).text


async def test_publishing_tells_the_followers_at_once_or_in_next_mondays_digest(smtp):
    club = await factories.association(slug="club", name="Club")
    other = await factories.association(slug="autre", name="Autre")
    at_once = await factories.user(email="now@etu.test", display_name="Now", language="en")
    weekly = await factories.user(email="weekly@etu.test", display_name="Weekly", language="en")
    stranger = await factories.user(email="stranger@etu.test")
    for user_id in (at_once, weekly):
        await follow(await logged_in(user_id), "club")
    await (await logged_in(weekly)).post("/account/notifications/", {
        "registration": "on", "followed": "on", "follow_emails": "weekly"})
    first, second = await submitted_event(club, "bal"), await submitted_event(club, "quiz")
    elsewhere = await submitted_event(other, "match")
    for event_id in (first, second, elsewhere):
        await factories.event_transition(event_id=event_id, action="approve")
    told = await messages_of("association.new_event")
    assert [(row.recipient_id, row.event_id) for row in told] == [(at_once, first), (at_once, second)]
    (digest,) = await messages_of("digest.followed")  # one per week, whatever the number of events
    assert digest.recipient_id == weekly and digest.send_after == follow_digest_time(utcnow())
    assert localtime.local(digest.send_after).weekday() == 0  # a Monday, in Paris
    assert digest.send_after > utcnow() and digest.send_after - utcnow() <= timedelta(days=7)
    await mailer.send_all_due()
    (message,) = [m for m in smtp.inbox.to("now@etu.test") if "Soirée bal" in m["Subject"]]
    assert message["Subject"] == "New: Soirée bal"
    assert "Club, which you follow, published a new event." in message.get_body(("plain",)).get_content()
    assert smtp.inbox.to("weekly@etu.test") == [] and smtp.inbox.to("stranger@etu.test") == [], stranger
    # Monday comes: the digest lists the week's events of the associations followed.
    async with db.write_session() as session, session.begin():  # raw: time passing until the digest is due
        await session.execute(update(OutboxMessage).where(OutboxMessage.kind == "digest.followed")
                              .values(send_after=utcnow() - timedelta(seconds=1)))
    await mailer.send_all_due()
    (weekly_mail,) = smtp.inbox.to("weekly@etu.test")
    text = weekly_mail.get_body(("plain",)).get_content()
    assert "Soirée bal" in text and "Soirée quiz" in text and "Soirée match" not in text
    # Its dates in the recipient's language (English here; the site's default is French).
    assert re.search(r"Soirée bal — (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) ", text)
    assert "/events/bal/" in text and "/associations/" in text


async def test_a_members_event_hidden_from_others_is_told_to_the_members_who_follow_only():
    club = await factories.association(slug="club", name="Club")
    member = await factories.user(email="member@etu.test")
    await factories.member(association_id=club, user_id=member, role=Role.MEMBER)
    outsider = await factories.user(email="outsider@etu.test")
    for user_id in (member, outsider):
        await follow(await logged_in(user_id), "club")
    secret = await submitted_event(club, "secret", restricted_to="members", hidden_from_others=True)
    await factories.event_transition(event_id=secret, action="approve")
    assert [row.recipient_id for row in await messages_of("association.new_event")] == [member]


async def test_the_personal_feed_carries_the_followed_associations_events_and_changes_when_following_does():
    club = await factories.association(slug="club", name="Club")
    await factories.event(association_id=club, slug="bal", title="Bal du club")
    registered = await factories.event(association_id=club, slug="gala", title="Gala du club")
    alice = await factories.user(email="alice@etu.test")
    await factories.registration(event_id=registered, user_id=alice)
    client = await logged_in(alice)
    async with db.write_session() as session:
        from events.accounts import services as account_services

        token = (await account_services.feed_token_regenerate(session, user_id=alice)).token
    before = await client.get(f"/feeds/me/{token}.ics")
    titles = [str(event["SUMMARY"]) for event in icalendar.Calendar.from_ical(before.content).walk("VEVENT")]
    assert titles == ["Gala du club"]
    await follow(client, "club")
    after = await client.get(f"/feeds/me/{token}.ics", headers={"If-None-Match": before["ETag"]})
    assert after.status_code == 200 and after["ETag"] != before["ETag"]
    titles = [str(event["SUMMARY"]) for event in icalendar.Calendar.from_ical(after.content).walk("VEVENT")]
    assert sorted(titles) == ["Bal du club", "Gala du club"]  # the gala once, with her own state
    await follow(client, "club", following=False)
    again = await client.get(f"/feeds/me/{token}.ics", headers={"If-None-Match": after["ETag"]})
    assert again.status_code == 200
    assert [str(event["SUMMARY"]) for event in icalendar.Calendar.from_ical(again.content).walk("VEVENT")] == [
        "Gala du club"]


async def test_my_data_lists_my_follows_and_closing_the_account_removes_them():
    await factories.association(slug="club", name="Club")
    alice = await factories.user(email="alice@etu.test")
    client = await logged_in(alice)
    await follow(client, "club")
    data = (await client.get("/account/data.json")).json()
    assert [entry["association"] for entry in data["follows"]] == ["Club"]
    async with db.write_session() as session:
        from events.ops import services as ops_services

        await ops_services.account_delete(session, user_id=alice)
    async with db.read_session() as session:
        from events.models import Follow

        assert (await session.execute(select(Follow.user_id))).first() is None


async def test_an_imported_published_event_is_told_to_the_followers_as_an_approved_one():
    from events.ops import services as ops_services
    from events.ops.ical_import import ImportedEvent

    await factories.association(slug="club", name="Club")
    alice = await factories.user(email="alice@etu.test")
    await follow(await logged_in(alice), "club")
    start = utcnow() + timedelta(days=5)
    async with db.write_session() as session:
        await ops_services.events_import(session, association_slug="club", events=[ImportedEvent(
            uid="x-1@club", title="Atelier", description="", location="", category="party", starts_at=start,
            ends_at=start + timedelta(hours=2), all_day=False, cancelled=False)])
    async with db.read_session() as session:
        imported = (await session.execute(select(Event.id, Event.published_at))).one()
    assert imported.published_at is not None
    assert [(row.recipient_id, row.event_id) for row in await messages_of("association.new_event")] == [
        (alice, imported.id)]



@pytest.mark.parametrize("restriction", [
    {"restricted_to": "invited", "restricted_emails": ["invited@etu.test", "weekly-in@etu.test"]},
    {"restricted_to": "promos", "restricted_promos": [2027]},
    {"restricted_to": "members"},
], ids=["invited", "promo", "members"])
async def test_an_event_open_to_some_students_is_told_to_the_followers_it_admits_only(restriction, smtp):
    club = await factories.association(slug="club", name="Club")
    admitted = await factories.user(email="invited@etu.test", promo=2027)
    weekly_admitted = await factories.user(email="weekly-in@etu.test", promo=2027)
    for member in (admitted, weekly_admitted):
        await factories.member(association_id=club, user_id=member, role=Role.MEMBER)
    other = await factories.user(email="other@etu.test", promo=2028)
    weekly_other = await factories.user(email="weekly-out@etu.test", promo=2028)
    for user_id in (admitted, other, weekly_admitted, weekly_other):
        client = await logged_in(user_id)
        await follow(client, "club")
        if user_id in (weekly_admitted, weekly_other):
            await client.post("/account/notifications/", {"registration": "on", "followed": "on",
                                                          "follow_emails": "weekly"})
    restricted = await submitted_event(club, "restreinte", **restriction)
    await factories.event_transition(event_id=restricted, action="approve")
    assert [row.recipient_id for row in await messages_of("association.new_event")] == [admitted]
    # The weekly digest lists it to those it admits only, beside an event open to all.
    await factories.event_transition(event_id=await submitted_event(club, "ouverte"), action="approve")
    async with db.write_session() as session, session.begin():  # raw: time passing until the digest is due
        await session.execute(update(OutboxMessage).where(OutboxMessage.kind == "digest.followed")
                              .values(send_after=utcnow() - timedelta(seconds=1)))
    await mailer.send_all_due()
    (inside,), (outside,) = smtp.inbox.to("weekly-in@etu.test"), smtp.inbox.to("weekly-out@etu.test")
    assert "Soirée restreinte" in inside.get_body(("plain",)).get_content()
    text = outside.get_body(("plain",)).get_content()
    assert "Soirée ouverte" in text and "Soirée restreinte" not in text
