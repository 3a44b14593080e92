"""A student's path through the site in a real browser: sign up, search, register, leave, calendar feed;
the calendar's navigation; screenshots of the main pages on a desktop and on a phone."""

from __future__ import annotations

import calendar as std_calendar
import re
import struct
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar
from playwright.async_api import expect

from tests import factories
from tests.accounts.mailbox import link_sent_to
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "Velociraptor-2027!"
PARTY = "Soirée d'intégration"


def paris_today() -> date:
    return datetime.now(PARIS).date()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A Paris wall-clock time, as the UTC moment the database stores."""
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).astimezone(UTC)


async def seed_upcoming_events() -> dict[str, str]:
    """An association and three approved events in the coming days; returns title -> slug."""
    bde = await factories.association(slug="bde", name="BDE Hyperion")
    sport = await factories.association(slug="bds", name="BDS")
    today = paris_today()
    events = {
        PARTY: dict(association_id=bde, slug="soiree-integration", starts_at=at(today + timedelta(days=3), 21),
                    hours=5, capacity=120, location="Le Foyer",
                    description="La soirée de rentrée des nouveaux élèves.\n\nDress code : blanc."),
        "Tournoi de foot": dict(association_id=sport, slug="tournoi-foot", starts_at=at(today + timedelta(days=4), 14),
                                hours=4, capacity=64, category="sport", location="Stade municipal"),
        "Conférence IA": dict(association_id=bde, slug="conference-ia", starts_at=at(today + timedelta(days=5), 18),
                              hours=2, capacity=None, category="conference", location="Amphi A"),
    }
    for title, columns in events.items():
        await factories.event(title=title, **columns)
    return {title: columns["slug"] for title, columns in events.items()}


async def test_student_journey(server, new_page):
    await seed_upcoming_events()
    page = await new_page(locale="en-US")

    # Home page, as a visitor.
    await page.goto("/")
    await expect(page.get_by_role("heading", name="Upcoming events", level=1)).to_be_visible()
    await expect(page.get_by_role("link", name=PARTY)).to_be_visible()
    await expect(page.get_by_role("link", name="Tournoi de foot")).to_be_visible()

    # Sign up, confirm the address through the link of the e-mail (read from the outbox), log in.
    await page.get_by_role("link", name="Sign up").click()
    await expect(page).to_have_url(re.compile(r"/account/signup/$"))
    await expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    await page.get_by_label("School e-mail").fill("camille.martin@etu.test")
    await page.get_by_label("Display name").fill("Camille Martin")
    await page.get_by_label("Promo (graduation year)").fill("2028")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password again").fill(PASSWORD)
    await page.get_by_role("main").get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("heading", name="Check your mailbox")).to_be_visible()
    await page.goto(await link_sent_to("camille.martin@etu.test", "/account/verify/"))
    await expect(page).to_have_url(f"{server.base_url}/account/login/")
    await expect(page.get_by_role("status")).to_contain_text("Your e-mail address is confirmed")
    await page.get_by_label("E-mail").fill("camille.martin@etu.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("main").get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{server.base_url}/")
    navigation = page.get_by_role("navigation", name="Main")
    await expect(navigation.get_by_role("link", name="Camille Martin")).to_be_visible()
    await expect(navigation.get_by_role("button", name="Log out")).to_be_visible()
    await expect(navigation.get_by_role("link", name="Sign up")).to_have_count(0)

    # Search without the accent: the event is found, the others are filtered out.
    await page.get_by_label("Search", exact=True).fill("soiree")
    await page.get_by_role("button", name="Search").click()
    await expect(page).to_have_url(re.compile(r"[?&]q=soiree(&|$)"))
    await expect(page.get_by_role("link", name=PARTY)).to_be_visible()
    await expect(page.get_by_role("link", name="Tournoi de foot")).to_have_count(0)
    await expect(page.get_by_role("link", name="Conférence IA")).to_have_count(0)

    # The event page: register.
    await page.get_by_role("link", name=PARTY).click()
    await expect(page).to_have_url(f"{server.base_url}/events/soiree-integration/")
    await expect(page.get_by_role("heading", name=PARTY, level=1)).to_be_visible()
    await expect(page.get_by_text("Le Foyer")).to_be_visible()
    await expect(page.get_by_text("120 seats left")).to_be_visible()
    await page.get_by_role("button", name="Register").click()
    my_state = page.get_by_role("region", name="Your registration")
    await expect(my_state).to_contain_text("You are registered")
    await expect(page.get_by_role("status")).to_contain_text("You are registered")
    await expect(page.get_by_text("119 seats left")).to_be_visible()
    await expect(my_state.get_by_role("button", name="Leave this event")).to_be_visible()

    # My events: confirmed.
    await navigation.get_by_role("link", name="My events").click()
    await expect(page.get_by_role("heading", name="My events", level=1)).to_be_visible()
    mine = page.get_by_role("listitem").filter(has=page.get_by_role("link", name=PARTY))
    await expect(mine).to_have_count(1)
    await expect(mine).to_contain_text("Confirmed")

    # Back to the event: leave it.
    await mine.get_by_role("link", name=PARTY).click()
    await expect(page.get_by_role("heading", name=PARTY, level=1)).to_be_visible()
    await my_state.get_by_role("button", name="Leave this event").click()
    await expect(page.get_by_role("status")).to_contain_text("You have left this event")
    await expect(my_state).to_contain_text("You left this event.")
    await expect(my_state.get_by_role("button", name="Register")).to_be_visible()
    await expect(page.get_by_text("120 seats left")).to_be_visible()

    # My account: create the personal calendar feed, then read it as a calendar app would.
    await navigation.get_by_role("link", name="Camille Martin").click()
    await expect(page.get_by_role("heading", name="My account", level=1)).to_be_visible()
    await page.get_by_role("button", name="Create my feed address").click()
    await expect(page.get_by_role("status")).to_contain_text("Your calendar feed address is ready")
    feed_input = page.get_by_label("Your personal feed address")
    await expect(feed_input).to_have_value(re.compile(r"/feeds/me/[^/]+\.ics$"))
    await expect(page.get_by_role("button", name="Make a new address")).to_be_visible()
    feed_url = await feed_input.input_value()
    assert feed_url.startswith(f"{server.base_url}/feeds/me/"), feed_url
    # Only the token's hash is stored: the account page never shows the address again.
    await page.goto(f"{server.base_url}/account/")
    await expect(page.get_by_text("Your feed address is set.")).to_be_visible()
    await expect(page.get_by_label("Your personal feed address")).to_have_count(0)

    async with httpx.AsyncClient(timeout=15) as client:
        response = await client.get(feed_url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar"), response.headers["content-type"]
    feed = Calendar.from_ical(response.content)
    vevents = {str(vevent["SUMMARY"]): vevent for vevent in feed.walk("VEVENT")}
    assert set(vevents) == {PARTY}, vevents.keys()
    party = vevents[PARTY]
    assert str(party["STATUS"]) == "CANCELLED"  # the student left
    assert str(party["URL"]) == f"{server.base_url}/events/soiree-integration/"
    assert str(party["LOCATION"]) == "Le Foyer"
    assert b"STATUS:CANCELLED" in response.content


async def test_home_page_in_french(server, new_page):
    """French is the default language: a browser that asks for French gets it."""
    await seed_upcoming_events()
    page = await new_page(locale="fr-FR")
    await page.goto("/")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.get_by_role("heading", name="Événements à venir", level=1)).to_be_visible()
    await expect(page.get_by_role("link", name=PARTY)).to_be_visible()
    # As French writes it: a capital for the heading's first letter only, the month in lower case.
    day_heading = await page.locator("h2.day-label").first.inner_text()  # as shown, after the CSS
    assert re.fullmatch(r"[A-Z][a-z]+ \d{1,2} [a-zéû]+ \d{4}", day_heading), day_heading


def month_title(first: date) -> str:
    return f"{std_calendar.month_name[first.month]} {first.year}"


def week_title(monday: date) -> str:
    sunday = monday + timedelta(days=6)
    return (f"{monday.day} {std_calendar.month_name[monday.month]} – "
            f"{sunday.day} {std_calendar.month_name[sunday.month]} {sunday.year}")


async def test_calendar_navigation(server, new_page):
    bde = await factories.association()
    today = paris_today()
    await factories.event(association_id=bde, slug="repas-du-jour", title="Repas du jour",
                               starts_at=at(today, 12), hours=1.5)
    page = await new_page(locale="en-US")

    await page.goto("/calendar/")
    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_have_text(month_title(today.replace(day=1)))
    today_cell = page.locator('td[aria-current="date"]')
    await expect(today_cell).to_have_count(1)
    await expect(today_cell).to_be_visible()
    await expect(today_cell).to_contain_text(str(today.day))
    await expect(today_cell.get_by_role("link", name="Repas du jour")).to_be_visible()

    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    await page.get_by_role("link", name="Next month").click()
    await expect(page).to_have_url(re.compile(rf"\?month={next_month:%Y-%m}$"))
    await expect(heading).to_have_text(month_title(next_month))
    # Today is not among next month's days (it may show among the last month's days the grid starts with,
    # at the end of a month).
    await expect(page.locator('td[aria-current="date"]:not(.other-month)')).to_have_count(0)

    await page.get_by_role("link", name="Week view").click()
    monday = next_month - timedelta(days=next_month.weekday())
    await expect(page).to_have_url(re.compile(r"/calendar/week/\?week="))
    await expect(heading).to_have_text(week_title(monday))
    await expect(page.locator("ol.calendar-week > li")).to_have_count(7)

    await page.get_by_role("link", name="Next week").click()
    await expect(heading).to_have_text(week_title(monday + timedelta(days=7)))
    await expect(page.get_by_role("link", name="Month view")).to_be_visible()


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


async def test_screenshots(server, new_page):
    slugs = await seed_upcoming_events()
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {name: ARTIFACTS / f"{name}.png" for name in ("home-desktop", "event-desktop", "home-phone")}
    for path in shots.values():
        path.unlink(missing_ok=True)

    desktop = await new_page(locale="en-US", viewport={"width": 1280, "height": 900})
    await desktop.goto("/")
    await expect(desktop.get_by_role("link", name=PARTY)).to_be_visible()
    await desktop.screenshot(path=shots["home-desktop"], full_page=True)
    await desktop.goto(f"/events/{slugs[PARTY]}/")
    await expect(desktop.get_by_role("heading", name=PARTY, level=1)).to_be_visible()
    await desktop.screenshot(path=shots["event-desktop"], full_page=True)

    phone = await new_page(locale="en-US", viewport={"width": 390, "height": 844}, device_scale_factor=2,
                           is_mobile=True, has_touch=True)
    await phone.goto("/")
    await expect(phone.get_by_role("link", name=PARTY)).to_be_visible()
    await phone.screenshot(path=shots["home-phone"], full_page=True)
    # The phone layout fits the screen: nothing scrolls sideways.
    scroll_width = await phone.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390, f"the home page is {scroll_width} px wide on a 390 px phone"

    for name, path in shots.items():
        assert path.is_file(), f"{path} was not written"
        assert path.stat().st_size > 10_000, f"{name}: only {path.stat().st_size} bytes"
    assert png_size(shots["home-desktop"])[0] == 1280
    assert png_size(shots["event-desktop"])[0] == 1280
    assert png_size(shots["home-phone"])[0] == 390 * 2
    assert png_size(shots["home-desktop"])[1] >= 900
