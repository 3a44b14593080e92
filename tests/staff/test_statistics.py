"""An event's statistics (events/staff/statistics.py, the view ``event_statistics``): the figures of a known
set-up made through the services, the registrations curve bucketed by day in the site's time zone, the empty
event, the present and the no-shows once the event has ended with the check-in used, the page in French."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from django.conf import settings
from sqlalchemy import update

from events.localtime import local, site_zone
from events.models import Event, Registration, utcnow
from events.staff import people as staff_people
from events.staff import queries as staff_queries
from events.staff import statistics
from hyperion import db
from tests import factories
from tests.staff.pages import client_for, students, team, url


async def figures_of(event_id: int, now: datetime | None = None) -> statistics.Statistics:
    async with db.read_session() as session:
        found = await staff_queries.admin_event(session, event_id=event_id)
        return await statistics.event_statistics(session, found=found, now=now or utcnow())


def words(html: str) -> str:
    """HTML as its words, tags and runs of spaces removed (what the figures read)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def main_text(html: str) -> str:
    return words(html[html.index("<main"):html.index("</main>")])


async def back_date(event_id: int, user_id: int, created_at: datetime) -> None:
    # raw: a registration made on another day (the service stamps the moment it runs).
    async with db.write_session() as session, session.begin():
        await session.execute(update(Registration).where(Registration.event_id == event_id,
                                                         Registration.user_id == user_id)
                              .values(created_at=created_at))


async def event_over(event_id: int) -> None:
    # raw: time passes, the event is over (an edit through the services would announce a new date).
    async with db.write_session() as session, session.begin():
        ends = utcnow() - timedelta(hours=1)
        await session.execute(update(Event).where(Event.id == event_id)
                              .values(starts_at=ends - timedelta(hours=3), ends_at=ends))


async def check_in(event_id: int, registration_id: int) -> None:
    async with db.write_session() as session:
        await staff_people.attendee_check_in(session, actor=factories.SET_UP, event_id=event_id,
                                             registration_id=registration_id)


async def test_the_figures_of_a_known_set_up_on_the_page_and_from_the_query():
    """5 seats, offers on: S0-S4 confirmed, S5 and S6 wait, S7 waits and leaves; S0 leaves and S5 is offered
    the seat."""
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=5, offer_hours=24)
    who = await students(8)
    for student in who:
        await factories.registration(event_id=event_id, user_id=student)
    await factories.registration_leave(event_id=event_id, user_id=who[7])
    await factories.registration_leave(event_id=event_id, user_id=who[0])

    figures = await figures_of(event_id)
    assert (figures.registrations, figures.confirmed, figures.offered, figures.left) == (8, 4, 1, 2)
    assert (figures.seats.taken, figures.seats.capacity, figures.seats.waitlisted) == (5, 5, 1)
    assert figures.seats.fill_rate == 1.0 and figures.entries == 0 and figures.attendance is None
    assert figures.days[-1].total == 8  # every row counts in the curve, those who left included

    manager = await client_for(people.manager)
    page = await manager.get(url("staff_event_statistics", event_id))
    assert page.status_code == 200
    text = main_text(page.text)
    for figure in ("8 registrations made · 4 confirmed now", "100% · 5 / 5 seats taken", "1 person waiting",
                   "1 seat offered, not answered yet", "2 people left or were removed",
                   "Who came and who did not is counted once the event has ended"):
        assert figure in text, figure
    assert "No-shows" not in text and "Lottery" not in text
    # Linked from the event's management page and from its attendees, for the manager; not for the editor.
    for name in ("staff_event", "staff_attendees"):
        assert url("staff_event_statistics", event_id) in (await manager.get(url(name, event_id))).text
        editor_page = await (await client_for(people.editor)).get(url(name, event_id))
        assert editor_page.status_code == 200 and url("staff_event_statistics", event_id) not in editor_page.text
    assert (await manager.post(url("staff_event_statistics", event_id))).status_code == 405


async def test_fill_rate_without_a_limit_and_part_full():
    people = await team()
    unlimited = await factories.event(association_id=people.bde, slug="libre", capacity=None)
    part_full = await factories.event(association_id=people.bde, slug="atelier", capacity=8)
    for student in await students(3):
        await factories.registration(event_id=unlimited, user_id=student)
        await factories.registration(event_id=part_full, user_id=student)
    manager = await client_for(people.manager)
    assert "No limit · 3 seats taken" in main_text((await manager.get(url("staff_event_statistics", unlimited))).text)
    assert "38% · 3 / 8 seats taken" in main_text((await manager.get(url("staff_event_statistics", part_full))).text)
    assert (await figures_of(unlimited)).seats.fill_rate is None


async def test_lottery_entries_waiting_for_the_draw_are_shown():
    event_id = await factories.lottery_event(capacity=1, slug="loterie")
    for student in await students(2):
        assert await factories.lottery_entry("loterie", student) is not None
    staff = await client_for(await factories.user(email="sam@etu.test", display_name="Sam", is_staff=True))
    text = main_text((await staff.get(url("staff_event_statistics", event_id))).text)
    assert "2 entries waiting for the draw" in text and "2 registrations made · 0 confirmed now" in text


async def test_the_curve_counts_registrations_by_local_day_to_today():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=10)
    first, second, third = await students(3)
    today = local(utcnow()).date()

    def at(days_ago: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(today - timedelta(days=days_ago), time(hour, minute), tzinfo=site_zone())

    for student in (first, second, third):
        await factories.registration(event_id=event_id, user_id=student)
    await back_date(event_id, first, at(4, 10))
    await back_date(event_id, second, at(2, 0, 30))  # the day before in UTC: counted on its local day
    await back_date(event_id, third, at(2, 23, 30))

    figures = await figures_of(event_id)
    assert [(day.day, day.new, day.total) for day in figures.days] == [
        (today - timedelta(days=4), 1, 1), (today - timedelta(days=3), 0, 1), (today - timedelta(days=2), 2, 3),
        (today - timedelta(days=1), 0, 3), (today, 0, 3)]
    chart = statistics.chart_of(figures.days)
    # Five days across the plot, the count axis from 0 to 3: the line climbs to the top on the third day.
    slot = statistics.PLOT_WIDTH / 5
    assert [point.x for point in chart.points] == [round(statistics.LEFT + (i + .5) * slot, 1) for i in range(5)]
    bottom, top = statistics.HEIGHT - statistics.BOTTOM, statistics.TOP
    assert [point.y for point in chart.points] == [round(bottom - (bottom - top) * n / 3, 1) for n in (1, 1, 3, 3, 3)]
    assert [tick.label for tick in chart.y_ticks] == ["0", "1", "2", "3"]
    assert [point.day.day for point in chart.dots] == [today - timedelta(days=4), today - timedelta(days=2)]

    page = (await (await client_for(people.manager)).get(url("staff_event_statistics", event_id))).text
    assert f'<polyline class="chart-line" points="{chart.line}"/>' in page
    assert 'role="img"' in page and "<title id=\"registrations-chart-title\">Registrations over time</title>" in page
    assert "3 registrations in all." in page and "style=" not in page[page.index("<svg"):page.index("</svg>")]
    table = words(page[page.index("<details"):page.index("</details>")])
    assert re.search(rf"{(today - timedelta(days=2)).day} \w+ \d{{4}} 2 3", table), table


def test_the_curve_stops_at_the_start_or_at_the_last_registration_and_draws_a_single_day():
    zone = site_zone()
    starts = datetime(2030, 5, 10, 19, tzinfo=zone)
    made = [datetime(2030, 5, 8, 9, tzinfo=zone), datetime(2030, 5, 8, 18, tzinfo=zone)]
    assert [(day.day.day, day.total) for day in statistics.days_of(made, until=starts)] == [(8, 2), (9, 2), (10, 2)]
    # Added at the door after the start: the curve reaches their day, and ends on the total.
    at_the_door = datetime(2030, 5, 11, 1, tzinfo=zone)
    assert [(day.day.day, day.total) for day in statistics.days_of([*made, at_the_door], until=starts)][-1] == (11, 3)
    # A single day: one dot, no line to join, the count axis from 0 to 2.
    chart = statistics.chart_of(statistics.days_of(made, until=made[-1]))
    assert len(chart.points) == 1 and chart.line == "" and chart.area == "" and len(chart.dots) == 1
    assert [tick.label for tick in chart.y_ticks] == ["0", "1", "2"]
    assert statistics.days_of([], until=starts) == [] and statistics.chart_of([]) is None
    assert [statistics.count_step(n) for n in (1, 4, 5, 37, 120, 2400)] == [1, 1, 2, 10, 50, 1000]


async def test_an_event_without_registrations_says_so_instead_of_a_chart():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="vide", capacity=5)
    page = (await (await client_for(people.manager)).get(url("staff_event_statistics", event_id))).text
    text = main_text(page)
    assert "Nobody has registered yet" in text and "0 registrations made · 0 confirmed now" in text
    assert "0% · 0 / 5 seats taken" in text and "<svg" not in page and "<details" not in page


async def test_present_and_no_shows_once_the_event_has_ended_and_the_check_in_was_used():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=5)
    without_check_in = await factories.event(association_id=people.bde, slug="sans-appel", capacity=5)
    registrations = []
    for student in await students(4):
        registrations.append(await factories.registration_id(event_id=event_id, user_id=student))
        await factories.registration(event_id=without_check_in, user_id=student)
    for registration_id in registrations[:3]:
        await check_in(event_id, registration_id)
    assert (await figures_of(event_id)).attendance is None  # not over yet: nobody is a no-show yet

    await event_over(event_id)
    await event_over(without_check_in)
    assert (await figures_of(event_id)).attendance == statistics.Attendance(present=3, no_shows=1)
    assert (await figures_of(without_check_in)).attendance is None  # attendance was not taken there
    manager = await client_for(people.manager)
    text = main_text((await manager.get(url("staff_event_statistics", event_id))).text)
    assert "Present 3 people checked in" in text and "No-shows 1 confirmed person did not come" in text
    assert "Who came and who did not" not in text


async def test_the_page_in_french():
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=4)
    for student in await students(3):
        await factories.registration(event_id=event_id, user_id=student)
    manager = await client_for(people.manager)
    manager.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    page = await manager.get(url("staff_event_statistics", event_id))
    assert page.status_code == 200
    text = main_text(page.text)
    for french in ("Statistiques", "Taux de remplissage", "3 inscriptions faites · 3 confirmées aujourd'hui",
                   "Inscriptions au fil du temps", "Les chiffres, jour par jour", " : 3 inscriptions."):
        assert french in text, french
    assert "75\u00a0% · 3 / 4 places prises" in page.text  # a French space before the sign
