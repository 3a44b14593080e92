"""The iCalendar feeds as a calendar client sees them: the right events, their state, and cheap re-polls."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from icalendar import Calendar
from sqlalchemy import update

from events.accounts import auth
from events.models import Event, EventStatus, Registration, User, utcnow
from events.rules.permissions import Actor
from events.staff import services as staff_services
from hyperion import db
from tests import factories, support

PARIS = ZoneInfo("Europe/Paris")


async def _calendar(async_client, url: str, headers: dict | None = None) -> tuple:
    response = await async_client.get(url, headers=headers or {})
    assert response.status_code == 200, response.status_code
    return response, Calendar.from_ical(response.content)


def _by_uid(calendar: Calendar) -> dict:
    return {str(vevent["UID"]): vevent for vevent in calendar.events}


def _summaries(calendar: Calendar) -> set[str]:
    return {str(vevent["SUMMARY"]) for vevent in calendar.events}


async def _feed_token_set(user_id: int, token: str, *, language: str = "en", is_active: bool = True) -> None:
    # raw: a token of the test's choosing (the service draws a random one).
    async with db.write_session() as session, session.begin():
        await session.execute(update(User).where(User.id == user_id).values(
            feed_token_hash=auth.feed_token_hash(token), language=language, is_active=is_active))


async def _event_unpublished(event_id: int) -> None:
    # raw: back to a draft, by hand: no transition leads there.
    async with db.write_session() as session, session.begin():
        await session.execute(update(Event).where(Event.id == event_id).values(status=EventStatus.DRAFT))


async def _everything_last_changed_an_hour_ago() -> None:
    # raw: HTTP dates have one-second resolution: back-date the rows so a change made now is visibly later.
    an_hour_ago = utcnow() - timedelta(hours=1)
    async with db.write_session() as session, session.begin():
        await session.execute(update(Event).values(updated_at=an_hour_ago))
        await session.execute(update(Registration).values(updated_at=an_hour_ago))


async def test_public_feed_lists_published_events_with_cancelled_ones_marked_and_hides_the_others(async_client):
    association_id = await factories.association()
    for status in EventStatus:
        await factories.event(association_id=association_id, slug=f"event-{status}", title=f"Event {status}",
                                   status=status)
    response, calendar = await _calendar(async_client, reverse("feed_all"))
    statuses = {str(vevent["SUMMARY"]): str(vevent["STATUS"]) for vevent in calendar.events}
    assert statuses == {"Event approved": "CONFIRMED", "Event cancelled": "CANCELLED"}
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Content-Disposition"].startswith("inline; filename=")
    assert str(calendar["VERSION"]) == "2.0" and str(calendar["METHOD"]) == "PUBLISH"
    assert calendar["PRODID"] and str(calendar["X-WR-CALNAME"]) == "Hyperion Events"


async def test_public_feed_drops_events_that_ended_more_than_thirty_days_ago(async_client):
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="long-ago", title="Long ago",
                               starts_at=utcnow() - timedelta(days=40))
    await factories.event(association_id=association_id, slug="last-week", title="Last week",
                               starts_at=utcnow() - timedelta(days=7))
    await factories.event(association_id=association_id, slug="next-week", title="Next week")
    _, calendar = await _calendar(async_client, reverse("feed_all"))
    assert _summaries(calendar) == {"Last week", "Next week"}
    # The single event's file has no window: an old link still opens.
    _, single = await _calendar(async_client, reverse("event_ics", args=["long-ago"]))
    assert _summaries(single) == {"Long ago"}


async def test_event_file_carries_every_property_a_calendar_needs_in_paris_time(async_client):
    association_id = await factories.association()
    starts = datetime(2031, 7, 14, 18, 30, tzinfo=UTC)
    event_id = await factories.event(
        association_id=association_id, slug="gala", title="Gala", starts_at=starts, hours=4, sequence=2,
        description="Tenue de soirée.", location="Grand hall", category="culture",
    )
    response, calendar = await _calendar(async_client, reverse("event_ics", args=["gala"]))
    [vevent] = calendar.events
    assert str(vevent["UID"]) == f"event-{event_id}@hyperion-events"
    assert vevent.sequence == 2
    assert str(vevent["SUMMARY"]) == "Gala" and str(vevent["DESCRIPTION"]) == "Tenue de soirée."
    assert str(vevent["LOCATION"]) == "Grand hall"
    assert str(vevent["URL"]) == "http://testserver/events/gala/"
    assert [str(category) for category in vevent.categories] == ["Culture"]
    assert str(vevent["STATUS"]) == "CONFIRMED"
    assert vevent["DTSTART"].params["TZID"] == "Europe/Paris"
    assert vevent.start == datetime(2031, 7, 14, 20, 30, tzinfo=PARIS)
    assert vevent.end == datetime(2031, 7, 15, 0, 30, tzinfo=PARIS)
    assert [timezone.tz_name for timezone in calendar.timezones] == ["Europe/Paris"]
    assert vevent.last_modified is not None and vevent.stamp is not None
    assert response["Content-Disposition"] == 'inline; filename="gala.ics"'


async def test_event_file_is_404_for_an_unpublished_or_unknown_event(async_client):
    association_id = await factories.association()
    for status in (EventStatus.DRAFT, EventStatus.SUBMITTED, EventStatus.DECLINED):
        await factories.event(association_id=association_id, slug=f"event-{status}", status=status)
        response = await async_client.get(reverse("event_ics", args=[f"event-{status}"]))
        assert response.status_code == 404, status
    assert (await async_client.get(reverse("event_ics", args=["no-such-event"]))).status_code == 404


async def test_all_day_events_are_written_as_dates_with_the_day_after_as_end(async_client):
    association_id = await factories.association()
    two_days = datetime(2031, 3, 10, tzinfo=PARIS)
    await factories.event(association_id=association_id, slug="weekend", title="Weekend",
                               starts_at=two_days, hours=47 + 59 / 60, all_day=True)
    trip = datetime(2031, 10, 4, 8, tzinfo=PARIS)
    await factories.event(association_id=association_id, slug="trip", title="Trip",
                               starts_at=trip, hours=34, all_day=True)
    midnight_to_midnight = datetime(2031, 5, 1, tzinfo=PARIS)
    await factories.event(association_id=association_id, slug="day", title="Day",
                               starts_at=midnight_to_midnight, hours=24, all_day=True)
    _, calendar = await _calendar(async_client, reverse("feed_all"))
    spans = {str(vevent["SUMMARY"]): (vevent.start, vevent.end) for vevent in calendar.events}
    assert spans == {
        "Weekend": (date(2031, 3, 10), date(2031, 3, 12)),
        "Trip": (date(2031, 10, 4), date(2031, 10, 6)),
        "Day": (date(2031, 5, 1), date(2031, 5, 2)),
    }
    assert all(vevent["DTSTART"].params.get("VALUE") == "DATE" for vevent in calendar.events)
    assert calendar.timezones == []  # dates need no time zone


async def test_text_from_users_is_escaped_and_cannot_break_the_calendar(async_client):
    association_id = await factories.association()
    title = "Gala\nEND:VCALENDAR\nBEGIN:VEVENT; prix: 5,50 €; UID:evil"
    description = "Ligne 1\r\nEND:VEVENT\r\nUID:injected\nLOCATION:ailleurs, loin; très"
    event_id = await factories.event(association_id=association_id, title=title, description=description,
                                          location="Salle A; bâtiment B, 2e")
    response, calendar = await _calendar(async_client, reverse("feed_all"))
    [vevent] = calendar.events
    assert str(vevent["UID"]) == f"event-{event_id}@hyperion-events"
    assert str(vevent["SUMMARY"]) == title
    assert str(vevent["DESCRIPTION"]) == description.replace("\r\n", "\n")
    assert str(vevent["LOCATION"]) == "Salle A; bâtiment B, 2e"
    lines = response.content.decode().split("\r\n")
    assert lines.count("END:VCALENDAR") == 1 and lines.count("BEGIN:VEVENT") == 1


async def test_association_feed_lists_only_that_associations_published_events(async_client):
    bde = await factories.association(slug="bde", name="BDE")
    arts = await factories.association(slug="arts", name="Club des arts")
    await factories.event(association_id=bde, slug="gala", title="Gala")
    await factories.event(association_id=arts, slug="expo", title="Expo")
    await factories.event(association_id=arts, slug="atelier", title="Atelier", status=EventStatus.DRAFT)
    _, calendar = await _calendar(async_client, reverse("feed_association", args=["arts"]))
    assert _summaries(calendar) == {"Expo"}
    assert "Club des arts" in str(calendar["X-WR-CALNAME"])
    assert (await async_client.get(reverse("feed_association", args=["nobody"]))).status_code == 404


async def test_category_feed_lists_only_that_category_and_unknown_categories_are_404(async_client):
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="match", title="Match", category="sport")
    await factories.event(association_id=association_id, slug="gala", title="Gala", category="party")
    _, calendar = await _calendar(async_client, reverse("feed_category", args=["sport"]))
    assert _summaries(calendar) == {"Match"}
    _, empty = await _calendar(async_client, reverse("feed_category", args=["trip"]))
    assert empty.events == []
    assert (await async_client.get(reverse("feed_category", args=["knitting"]))).status_code == 404


async def test_uid_stays_the_same_from_one_poll_to_the_next(async_client):
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="gala", title="Gala")
    await factories.event(association_id=association_id, slug="match", title="Match")
    _, first = await _calendar(async_client, reverse("feed_all"))
    _, second = await _calendar(async_client, reverse("feed_all"))
    assert set(_by_uid(first)) == set(_by_uid(second)) and len(_by_uid(first)) == 2


async def test_unchanged_feed_answers_304_with_an_empty_body_to_if_none_match(async_client):
    association_id = await factories.association()
    await factories.event(association_id=association_id)
    first = await async_client.get(reverse("feed_all"))
    assert first["ETag"]
    again = await async_client.get(reverse("feed_all"), headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == first["ETag"]


async def test_unchanged_feed_answers_304_to_if_modified_since(async_client):
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="gala")
    for url in (reverse("feed_all"), reverse("event_ics", args=["gala"])):
        first = await async_client.get(url)
        again = await async_client.get(url, headers={"If-Modified-Since": first["Last-Modified"]})
        assert again.status_code == 304 and again.content == b"", url


async def test_a_changed_event_changes_the_etag_sequence_and_last_modified(async_client):
    association_id = await factories.association()
    event_id = await factories.event(association_id=association_id, slug="gala", title="Gala")
    await _everything_last_changed_an_hour_ago()
    url = reverse("event_ics", args=["gala"])
    before, _ = await _calendar(async_client, url)
    async with db.write_session() as session:
        await staff_services.event_update(session, actor=factories.SET_UP, event_id=event_id,
                                          values={"location": "Amphi B"})
    after, calendar = await _calendar(async_client, url, {"If-None-Match": before["ETag"]})
    assert after["ETag"] != before["ETag"]
    [vevent] = calendar.events
    assert str(vevent["LOCATION"]) == "Amphi B" and vevent.sequence == 1
    refreshed = await async_client.get(url, headers={"If-Modified-Since": before["Last-Modified"]})
    assert refreshed.status_code == 200


@pytest.mark.parametrize(("values", "shown"), [({"location": "Amphi B"}, ("LOCATION", "Amphi B")),
                                               ({"title": "Gala d'hiver"}, ("SUMMARY", "Gala d'hiver"))],
                         ids=["new-place", "new-title"])
async def test_an_edit_in_the_management_area_reaches_subscribed_calendars_as_a_new_version(async_client, values,
                                                                                            shown):
    """The feed follows the one owner of "what follows a change" (events/notifications/changes.py): a new place
    and a new title both give the event a new SEQUENCE, so calendars replace what they showed."""
    association_id = await factories.association()
    event_id = await factories.event(association_id=association_id, slug="gala", title="Gala")
    url = reverse("event_ics", args=["gala"])
    _, calendar = await _calendar(async_client, url)
    assert calendar.events[0].sequence == 0
    staff = Actor(id=await factories.user(email="staff@etu.test", is_staff=True), is_staff=True)
    async with db.write_session() as session:
        await staff_services.event_update(session, actor=staff, event_id=event_id, values=values)
    _, calendar = await _calendar(async_client, url)
    [vevent] = calendar.events
    assert str(vevent[shown[0]]) == shown[1] and vevent.sequence == 1


async def test_unpublishing_an_event_makes_the_feed_modified_and_removes_it(async_client):
    association_id = await factories.association()
    event_id = await factories.event(association_id=association_id, slug="gala", title="Gala")
    await factories.event(association_id=association_id, slug="match", title="Match")
    await _everything_last_changed_an_hour_ago()
    before = await async_client.get(reverse("feed_all"))
    await _event_unpublished(event_id)
    response, calendar = await _calendar(async_client, reverse("feed_all"),
                                         {"If-Modified-Since": before["Last-Modified"]})
    assert _summaries(calendar) == {"Match"}


async def test_personal_feed_shows_each_registration_with_the_students_own_state(async_client):
    association_id = await factories.association()
    alice = await factories.user(email="alice@etu.test")
    others = [await factories.user(email=f"student{number}@etu.test") for number in range(2)]
    await _feed_token_set(alice, "alice-secret-token")
    gala = await factories.event(association_id=association_id, slug="gala", title="Gala")
    match = await factories.event(association_id=association_id, slug="match", title="Match", capacity=0)
    left = await factories.event(association_id=association_id, slug="concert", title="Concert")
    called_off = await factories.event(association_id=association_id, slug="rallye", title="Rallye")
    hidden = await factories.event(association_id=association_id, slug="secret", title="Secret",
                                        status=EventStatus.DRAFT)
    not_mine = await factories.event(association_id=association_id, slug="expo", title="Expo")
    for other in others:
        await factories.registration(event_id=match, user_id=other)  # no seats: in line
        await factories.registration(event_id=not_mine, user_id=other)
    for event_id in (gala, match, left, called_off):
        await factories.registration(event_id=event_id, user_id=alice)
    await factories.registration_leave(event_id=left, user_id=alice)
    await factories.event_transition(event_id=called_off, action="cancel")
    await support.registration_create_raw(event_id=hidden, user_id=alice)  # raw: registration refuses a draft

    response, calendar = await _calendar(async_client, reverse("feed_personal", args=["alice-secret-token"]))
    statuses = {str(vevent["SUMMARY"]): str(vevent["STATUS"]) for vevent in calendar.events}
    assert statuses == {
        "Gala": "CONFIRMED",
        "Match (waitlist #3)": "TENTATIVE",
        "Concert": "CANCELLED",
        "Rallye": "CANCELLED",
    }
    assert response["Cache-Control"] == "private, max-age=300"
    assert str(_by_uid(calendar)[f"event-{match}@hyperion-events"]["URL"]) == "http://testserver/events/match/"


async def test_waitlist_position_moves_up_when_someone_ahead_leaves(async_client):
    association_id = await factories.association()
    ahead = await factories.user(email="first@etu.test")
    bob = await factories.user(email="bob@etu.test", display_name="Bob")
    await _feed_token_set(bob, "bob-secret-token")
    gala = await factories.event(association_id=association_id, capacity=1)
    await factories.registration(event_id=gala, user_id=await factories.user(email="in@etu.test"))
    await factories.registration(event_id=gala, user_id=ahead)  # in line, first
    await factories.registration(event_id=gala, user_id=bob)
    await _everything_last_changed_an_hour_ago()
    url = reverse("feed_personal", args=["bob-secret-token"])
    before, calendar = await _calendar(async_client, url)
    assert _summaries(calendar) == {"Gala (waitlist #2)"}

    await factories.registration_leave(event_id=gala, user_id=ahead)
    # Bob's own registration did not change, yet his feed did: no 304 on either validator.
    _, calendar = await _calendar(async_client, url, {"If-Modified-Since": before["Last-Modified"]})
    assert _summaries(calendar) == {"Gala (waitlist #1)"}
    _, calendar = await _calendar(async_client, url, {"If-None-Match": before["ETag"]})
    assert [str(vevent["STATUS"]) for vevent in calendar.events] == ["TENTATIVE"]


async def test_personal_feed_says_cancelled_once_the_student_leaves_or_the_event_is_cancelled(async_client):
    association_id = await factories.association()
    alice = await factories.user()
    await _feed_token_set(alice, "alice-secret-token")
    gala = await factories.event(association_id=association_id, slug="gala", title="Gala")
    match = await factories.event(association_id=association_id, slug="match", title="Match")
    await factories.registration(event_id=gala, user_id=alice)
    await factories.registration(event_id=match, user_id=alice)
    url = reverse("feed_personal", args=["alice-secret-token"])
    _, calendar = await _calendar(async_client, url)
    assert {str(vevent["STATUS"]) for vevent in calendar.events} == {"CONFIRMED"}

    await factories.registration_leave(event_id=gala, user_id=alice)
    await factories.event_transition(event_id=match, action="cancel")
    _, calendar = await _calendar(async_client, url)
    assert {str(vevent["SUMMARY"]): str(vevent["STATUS"]) for vevent in calendar.events} == {
        "Gala": "CANCELLED", "Match": "CANCELLED",
    }


async def test_personal_feed_is_404_without_the_right_token_or_for_an_inactive_student(async_client):
    association_id = await factories.association()
    alice = await factories.user()
    carol = await factories.user(email="carol@etu.test", display_name="Carol")
    await _feed_token_set(alice, "alice-secret-token")
    await _feed_token_set(carol, "carol-secret-token", is_active=False)
    await factories.registration(event_id=await factories.event(association_id=association_id), user_id=alice)
    for token in ("wrong-token", str(alice), "carol-secret-token", "alice-secret-toke"):
        response = await async_client.get(reverse("feed_personal", args=[token]))
        assert response.status_code == 404, token
    assert (await async_client.get("/feeds/me/.ics")).status_code == 404


async def test_feeds_only_answer_reads(async_client):
    response = await async_client.post(reverse("feed_all"))
    assert response.status_code == 405
