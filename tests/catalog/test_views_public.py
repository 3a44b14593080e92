"""The pages students browse: list with filters and search, event page, association page, calendar."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from events.models import EventStatus, utcnow
from tests import factories, support

PARIS = ZoneInfo("Europe/Paris")


async def test_home_groups_upcoming_events_by_day_with_paris_times_and_seats(async_client):
    association_id = await factories.association(slug="bds", name="BDS")
    start = (utcnow() + timedelta(days=3)).astimezone(PARIS).replace(hour=18, minute=30, second=0, microsecond=0)
    await factories.event(association_id=association_id, slug="foot", title="Tournoi de foot",
                               starts_at=start, capacity=10, location="Gymnase")
    response = await async_client.get("/", headers={"Accept-Language": "en"})
    page = response.text
    assert response.status_code == 200
    assert "Tournoi de foot" in page and "BDS" in page and "Gymnase" in page
    assert "18:30 – 21:30" in page  # local time, not UTC
    assert "10 seats left" in page


async def test_full_event_says_waitlist_open_and_past_or_unpublished_events_are_not_listed(async_client):
    association_id = await factories.association()
    full = await factories.event(association_id=association_id, slug="full", title="Complet", capacity=1)
    student = await factories.user()
    await factories.registration(event_id=full, user_id=student)
    await factories.event(association_id=association_id, slug="past", title="Passé",
                               starts_at=utcnow() - timedelta(days=2))
    await factories.event(association_id=association_id, slug="draft", title="Brouillon",
                               status=EventStatus.DRAFT)
    await factories.event(association_id=association_id, slug="declined", title="Refusé",
                               status=EventStatus.DECLINED)
    page = (await async_client.get("/", headers={"Accept-Language": "en"})).text
    assert "Complet" in page and "Full, waitlist open" in page
    assert "Passé" not in page and "Brouillon" not in page and "Refusé" not in page


async def test_filters_by_association_category_dates_and_seats_live_in_the_url(async_client):
    bde = await factories.association(slug="bde", name="BDE")
    bds = await factories.association(slug="bds", name="BDS")
    soon = utcnow() + timedelta(days=2)
    await factories.event(association_id=bde, slug="party", title="Soirée BDE", starts_at=soon)
    await factories.event(association_id=bds, slug="match", title="Match BDS", starts_at=soon,
                               category="sport")
    await factories.event(association_id=bds, slug="later", title="Tournoi lointain",
                               starts_at=soon + timedelta(days=40), category="sport")
    full = await factories.event(association_id=bde, slug="full", title="Soirée pleine", capacity=1,
                                      starts_at=soon)
    await factories.registration(event_id=full, user_id=await factories.user())

    by_association = (await async_client.get("/?association=bds")).text
    assert "Match BDS" in by_association and "Soirée BDE" not in by_association
    by_category = (await async_client.get("/?category=sport")).text
    assert "Match BDS" in by_category and "Soirée BDE" not in by_category
    until = (soon + timedelta(days=5)).astimezone(PARIS).date().isoformat()
    by_dates = (await async_client.get(f"/?date_to={until}")).text
    assert "Match BDS" in by_dates and "Tournoi lointain" not in by_dates
    with_seats = (await async_client.get("/?has_seats=on")).text
    assert "Soirée BDE" in with_seats and "Soirée pleine" not in with_seats


async def test_search_finds_events_whatever_the_accents_and_case(async_client):
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="soiree", title="Grande Soirée d'hiver")
    await factories.event(association_id=association_id, slug="foot", title="Tournoi de foot")
    for query in ("soiree", "SOIRÉE", "Soirée"):
        page = (await async_client.get("/", {"q": query})).text
        assert "Grande Soirée d&#39;hiver" in page and "Tournoi de foot" not in page, query


@pytest.mark.parametrize("query", [
    "date_from=2026-99-99", "date_from=not-a-date", "date_to=0001-01-01", "date_from=99999-01-01",
    "category=nope", "association=%00%01", "page=-5", "page=abc", "page=99999999999999999999",
    "q=%27%3B%20DROP%20TABLE%20events%3B--", "q=" + "x" * 500, "has_seats=maybe", "q=%E2%80%AE%F0%9F%8E%89",
])
async def test_bad_filter_values_give_a_page_with_a_message_never_a_500(async_client, query):
    association_id = await factories.association()
    await factories.event(association_id=association_id, title="Toujours là")
    response = await async_client.get(f"/?{query}")
    assert response.status_code == 200


async def test_bad_date_filter_is_explained_on_the_page(async_client):
    response = await async_client.get("/?date_from=2026-13-45", headers={"Accept-Language": "en"})
    assert "Enter a valid date" in response.text


async def test_pagination_walks_through_all_upcoming_events(async_client):
    association_id = await factories.association()
    for number in range(25):
        await factories.event(association_id=association_id, slug=f"e{number}", title=f"Event number {number}",
                                   starts_at=utcnow() + timedelta(days=1, hours=number))
    first = (await async_client.get("/?category=party")).text
    second = (await async_client.get("/?category=party&page=2")).text
    assert "Event number 0<" in first and "Event number 19<" in first and "Event number 20<" not in first
    assert "Event number 20<" in second and "Event number 24<" in second
    assert 'rel="next" href="?category=party&amp;page=2"' in first


async def test_event_page_shows_details_and_escapes_user_text(async_client):
    association_id = await factories.association(name="BDE <b>officiel</b>")
    await factories.event(association_id=association_id, slug="gala", title="Gala <script>alert(1)</script>",
                               description="Ligne 1\n<img src=x onerror=alert(1)>\n\nParagraphe 2",
                               location="Salle des fêtes")
    response = await async_client.get("/events/gala/")
    page = response.text
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>officiel</b>" not in page
    assert "<p>Ligne 1<br>" in page and "<p>Paragraphe 2</p>" in page
    assert "Salle des fêtes" in page


async def test_cancelled_event_page_stays_up_with_a_banner_and_no_register_button(async_client):
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="annule", title="Concert",
                               status=EventStatus.CANCELLED, decision_reason="Salle inondée")
    response = await async_client.get("/events/annule/", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert "This event is cancelled." in response.text and "Salle inondée" in response.text
    assert "/register/" not in response.text


@pytest.mark.parametrize("status", [EventStatus.DRAFT, EventStatus.SUBMITTED, EventStatus.DECLINED])
async def test_unpublished_event_is_404_for_visitors_students_and_other_associations_editors(async_client, status):

    from events.models import Role

    own = await factories.association(slug="own", name="Own")
    other = await factories.association(slug="other", name="Other")
    await factories.event(association_id=own, slug="secret", title="Secret", status=status)
    assert (await async_client.get("/events/secret/")).status_code == 404
    editor_elsewhere = await factories.user(email="other@etu.test")
    await factories.member(association_id=other, user_id=editor_elsewhere, role=Role.EDITOR)
    await support.login(async_client, editor_elsewhere)
    assert (await async_client.get("/events/secret/")).status_code == 404


async def test_unpublished_event_is_visible_to_its_association_editors_and_staff(async_client):

    from events.models import Role

    own = await factories.association(slug="own", name="Own")
    await factories.event(association_id=own, slug="secret", title="Secret draft", status=EventStatus.DRAFT)
    editor = await factories.user(email="editor@etu.test")
    await factories.member(association_id=own, user_id=editor, role=Role.EDITOR)
    await support.login(async_client, editor)
    assert "Secret draft" in (await async_client.get("/events/secret/")).text
    staff = await factories.user(email="staff@etu.test", is_staff=True)
    await support.login(async_client, staff)
    assert (await async_client.get("/events/secret/")).status_code == 200


async def test_unknown_event_and_association_are_404(async_client):
    assert (await async_client.get("/events/nope/")).status_code == 404
    assert (await async_client.get("/associations/nope/")).status_code == 404


async def test_association_page_lists_its_upcoming_and_past_events(async_client):
    association_id = await factories.association(slug="bda", name="BDA")
    await factories.event(association_id=association_id, slug="expo", title="Exposition à venir")
    await factories.event(association_id=association_id, slug="old", title="Concert passé",
                               starts_at=utcnow() - timedelta(days=10))
    other = await factories.association(slug="bds", name="BDS")
    await factories.event(association_id=other, slug="foot", title="Foot")
    page = (await async_client.get("/associations/bda/", headers={"Accept-Language": "en"})).text
    upcoming, past = page.split("Past events")
    assert "Exposition à venir" in upcoming and "Concert passé" in past and "Foot" not in page


async def test_calendar_month_places_multi_day_and_all_day_events_and_highlights_today(async_client):
    association_id = await factories.association()
    today = utcnow().astimezone(PARIS).date()
    from datetime import datetime, time
    start = datetime.combine(today.replace(day=1) + timedelta(days=9), time(9), tzinfo=PARIS)
    await factories.event(association_id=association_id, slug="weekend", title="Week-end ski",
                               starts_at=start, hours=50)
    await factories.event(association_id=association_id, slug="journee", title="Journée portes ouvertes",
                               starts_at=datetime.combine(start.date() + timedelta(days=5), time(0), tzinfo=PARIS),
                               hours=24, all_day=True)
    response = await async_client.get(f"/calendar/?month={today:%Y-%m}")
    page = response.text
    assert response.status_code == 200
    assert page.count("Week-end ski") == 3  # Friday, Saturday, Sunday cells
    assert page.count("Journée portes ouvertes") == 1  # ends at midnight: one day only
    assert 'aria-current="date"' in page
    next_month = (today.replace(day=28) + timedelta(days=5)).replace(day=1)
    assert f'?month={next_month:%Y-%m}' in page


async def test_calendar_week_navigates_and_bad_parameters_fall_back_to_today(async_client):
    association_id = await factories.association()
    await factories.event(association_id=association_id, slug="x", title="Cette semaine",
                               starts_at=utcnow() + timedelta(minutes=30))
    page = (await async_client.get("/calendar/week/")).text
    assert "Cette semaine" in page or "Cette semaine" in (await async_client.get(
        f"/calendar/week/?week={(utcnow() + timedelta(days=7)).date().isoformat()}")).text
    for bad in ("?week=garbage", "?week=0001-01-01", "?month=2026-13", "?month=x"):
        path = "/calendar/week/" if "week" in bad else "/calendar/"
        assert (await async_client.get(path + bad)).status_code == 200


@pytest.mark.parametrize("prefix", ["/", "/events bde/"])
def test_template_links_are_what_django_reverse_gives_and_refuse_what_it_refuses(prefix):
    """url() builds links from routes compiled once (hyperion/jinja.py): every link must be reverse()'s,
    including quoting, and a value a route refuses must raise Django's NoReverseMatch, not make a link."""
    from django.urls import NoReverseMatch, reverse, set_script_prefix

    from hyperion.jinja import url

    set_script_prefix(prefix)
    try:
        for name, args in [("home", ()), ("event_detail", ("gala-2026",)), ("feed_personal", ("tok en%é",)),
                           ("staff_attendee_remove", (12, 345)), ("staff_event", ("77",))]:
            assert url(name, *args) == reverse(name, args=args or None), (name, args)
        for name, args in [("event_detail", ("a b",)), ("staff_event", (2**40,)), ("staff_event", ("x",)),
                           ("feed_personal", ("a/b",)), ("home", (1,)), ("no_such_route", ())]:
            with pytest.raises(NoReverseMatch):
                url(name, *args)
    finally:
        set_script_prefix("/")


def test_template_links_follow_the_script_prefix_the_site_is_mounted_under():
    """url() in templates remembers what reverse() answered; a site mounted under /events-bde/ (a proxy's
    SCRIPT_NAME) must still get links under that prefix, and the root site links at the root."""
    from django.urls import set_script_prefix

    from hyperion.jinja import url

    try:
        assert url("event_detail", "gala") == "/events/gala/"
        set_script_prefix("/events-bde/")
        assert url("event_detail", "gala") == "/events-bde/events/gala/"
        assert url("event_detail", slug="gala") == "/events-bde/events/gala/"
    finally:
        set_script_prefix("/")
    assert url("event_detail", "gala") == "/events/gala/"
    assert url("event_detail", "other") == "/events/other/"
