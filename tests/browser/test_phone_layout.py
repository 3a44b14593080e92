"""Every page of the site on a phone, in a real browser: at 320 px and 390 px wide, logged out, as a student
and as staff, no page scrolls sideways, no visible button, link or field sticks out of the screen, no link
is cut short, and every visible text has WCAG AA contrast with what is behind it (4.5:1; 3:1 for large
text), on phones and at 1280 px. The visits must cover every template that renders a full page: a new page
template without a visit here fails the test.

Pages that no URL can bring up on purpose in the real server (the 400, 429, 500 and 503 error pages) are
rendered by Django in the test process and served to the browser at the server's own address, with the real
stylesheet. The e-mail template is no web page.
"""

from __future__ import annotations

import calendar as std_calendar
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import RequestFactory
from playwright.async_api import Page, expect
from sqlalchemy import insert, select, update

from events.accounts import auth
from events.models import (
    AuditEntry,
    Event,
    EventStatus,
    OutboxMessage,
    OutboxStatus,
    Registration,
    Role,
    User,
)
from events.rules.permissions import Actor
from events.staff import questions as staff_questions
from hyperion import db
from tests import factories, support
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "Ptérodactyle-2030!"
PHONE_WIDTHS = (320, 390)
DESKTOP_WIDTH = 1280  # contrast only: the desktop shows what phones hide (the month grid)
TEMPLATES = support.ROOT / "templates"
# Templates that are no page of the site: e-mails are sent, not browsed.
NOT_PAGES = {"emails/message.html"}
# HYPERION_PHONE_SCREENSHOTS=1: a screenshot of every page at each phone width, to look at.
SCREENSHOTS = ARTIFACTS / "phone" if os.environ.get("HYPERION_PHONE_SCREENSHOTS") else None

LONG_TITLE = "Assemblée générale extraordinaire du Bureau des élèves et de l'association sportive"
LONG_ASSOCIATION = "Association des étudiants en ingénierie aérospatiale et télécommunications"
LONG_WORD = "Anticonstitutionnellementissimement"
LONG_URL = "https://www.exemple-d-association-etudiante.fr/evenements/2026/assemblee-generale-extraordinaire"


def full_page_templates() -> set[str]:
    """Every template that renders a whole page: those that extend a layout and that no other extends
    (partials and macros extend nothing; layouts are extended)."""
    extending, layouts = set(), set()
    for path in TEMPLATES.rglob("*.html"):
        found = re.search(r'{%-?\s*extends\s+"([^"]+)"', path.read_text())
        if found:
            extending.add(path.relative_to(TEMPLATES).as_posix())
            layouts.add(found.group(1))
    return extending - layouts - NOT_PAGES


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).astimezone(UTC)


@dataclass
class Site:
    student: int
    staff: int
    manager: int
    association: int
    association_slug: str
    event: int
    event_slug: str
    overlapping_slug: str
    submitted: int
    draft: int
    registration: int


async def seed() -> Site:
    """Enough data that lists, tables, the month calendar and the check-in have rows, with long names."""
    password_hash = await auth.password_hash(PASSWORD)
    long_slug = "aero-telecom"
    association = await factories.association(slug=long_slug, name=LONG_ASSOCIATION)
    other = await factories.association(slug="bds", name="BDS")
    student = await factories.user(email="marie-charlotte.de-la-fontaine-beaumarchais@etudiants.hyperion.test",
                                        display_name="Marie-Charlotte de La Fontaine-Beaumarchais",
                                        password_hash=password_hash)
    staff = await factories.user(email="sam.staff@etu.test", display_name="Sam Staff", is_staff=True,
                                      password_hash=password_hash)
    manager = await factories.user(email="maxime.manager@etu.test", display_name="Maxime Manager",
                                        password_hash=password_hash)
    attendees = [await factories.user(
        email=f"etudiant.numero.{n}.{LONG_WORD.lower()}@etudiants.hyperion.test",
        display_name=f"Jean-Baptiste-Emmanuel {LONG_WORD} {n}", password_hash=password_hash) for n in range(6)]
    async with db.write_session() as session, session.begin():  # raw: only a log-in sets last_login_at
        await session.execute(update(User).values(promo=2028, last_login_at=datetime.now(UTC)))
    for user_id, role in ((manager, Role.MANAGER), (attendees[0], Role.EDITOR), (student, Role.MEMBER)):
        await factories.member(association_id=association, user_id=user_id, role=role)

    today = datetime.now(PARIS).date()
    soon = today + timedelta(days=3)
    event = await factories.event(
        association_id=association, slug="assemblee-generale", title=LONG_TITLE, starts_at=at(soon, 18), hours=3,
        capacity=5, location=f"Amphithéâtre {LONG_WORD}, bâtiment B", description=f"Programme : {LONG_URL}")
    await factories.event(association_id=other, slug="tournoi", title="Tournoi de badminton",
                               starts_at=at(soon, 19), hours=2, category="sport")
    # The month calendar: events on several days of this month, several on one day, one all day.
    first = today.replace(day=1)
    for n, day in enumerate((first, first + timedelta(days=9), first + timedelta(days=9), today)):
        await factories.event(association_id=other, slug=f"mois-{n}", title=f"{LONG_WORD} soirée {n}",
                                   starts_at=at(day, 12 + n), hours=1, all_day=n == 1)
    await factories.event(association_id=other, slug="annule", title="Conférence annulée",
                               starts_at=at(soon, 12), status=EventStatus.CANCELLED)
    submitted = await factories.event(association_id=association, slug="soumis", title=f"{LONG_TITLE} (bis)",
                                           starts_at=at(soon + timedelta(days=7), 20), status=EventStatus.SUBMITTED)
    draft = await factories.event(association_id=association, slug="brouillon", title=f"Brouillon {LONG_WORD}",
                                       status=EventStatus.DRAFT)

    # The long event: 5 seats, 6 attendees and the student (confirmed), 2 on the waitlist; 2 checked in.
    registration = await factories.registration_id(event_id=event, user_id=student)
    for user in attendees:
        await factories.registration(event_id=event, user_id=user)
    # raw: two checked in at once, audit entries and a failed e-mail with long values of the layout's choosing
    # (no service writes these words, nor gives a message up at will).
    async with db.write_session() as session, session.begin():
        await session.execute(update(Registration).where(Registration.user_id.in_(attendees[:2]))
                              .values(checked_in_at=datetime.now(UTC)))
        await session.execute(insert(AuditEntry), [
            {"actor_id": staff, "action": "event.updated", "object_type": "event", "object_id": event,
             "association_id": association,
             "changes": {"description": ["", f"Programme : {LONG_URL}"], "location": ["Amphi A", LONG_WORD]}},
            {"actor_id": manager, "action": "registration.removed", "object_type": "registration",
             "object_id": registration, "association_id": association, "changes": {"user": LONG_WORD}},
        ])
        await session.execute(insert(OutboxMessage), {
            "kind": "registration.confirmed", "recipient_id": attendees[1], "event_id": event,
            "status": OutboxStatus.FAILED, "attempts": 8,
            "last_error": f"SMTPRecipientsRefused: {LONG_URL}/{LONG_WORD}{LONG_WORD}", "payload": {}})
    return Site(student=student, staff=staff, manager=manager, association=association,
                association_slug=long_slug, event=event, event_slug="assemblee-generale",
                overlapping_slug="tournoi", submitted=submitted, draft=draft, registration=registration)


# One pass over the page in the browser: what sticks out, what is cut, what lacks contrast.
AUDIT_JS = r"""
(phone) => {
  const width = window.innerWidth;
  const problems = [];
  const describe = (el) => {
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().replace(/\s+/g, ' ');
    return `<${el.tagName.toLowerCase()}${el.className ? ' class="' + el.className + '"' : ''}> "${text.slice(0, 40)}"`;
  };
  const shown = (el) => {
    const style = getComputedStyle(el);
    if (style.visibility !== 'visible' || el.closest('[hidden]')) return false;
    // Visually hidden: 1 px, or inside a clipped box of 1 px (a table's head kept for screen readers).
    for (let node = el; node && node !== document.body; node = node.parentElement) {
      const box = node.getBoundingClientRect();
      if ((node === el || getComputedStyle(node).overflow !== 'visible') && (box.width <= 1 || box.height <= 1)) {
        return false;
      }
    }
    return true;
  };
  if (phone && document.documentElement.scrollWidth > width) {
    // Name the culprits: the innermost elements that reach past the right edge.
    const wide = [...document.body.querySelectorAll('*')]
      .filter((el) => el.getBoundingClientRect().right > width + 0.5);
    const innermost = wide.filter((el) => !wide.some((other) => other !== el && el.contains(other)));
    problems.push(`scrolls sideways: ${document.documentElement.scrollWidth} px wide, because of `
                  + innermost.slice(0, 3).map(describe).join(', '));
  }
  const interactive = 'a[href], button, input:not([type=hidden]), select, textarea, summary';
  for (const el of phone ? document.querySelectorAll(interactive) : []) {
    if (el.matches('.skip-link:not(:focus)') || !shown(el)) continue;  // the skip link waits off-screen
    const box = el.getBoundingClientRect();
    if (box.left < -0.5 || box.right > width + 0.5) {
      problems.push(`outside the screen (${Math.round(box.left)}..${Math.round(box.right)} px): ${describe(el)}`);
    }
    if (getComputedStyle(el).textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1) {
      problems.push(`cut short: ${describe(el)}`);
    }
  }

  const rgba = (value) => {
    const m = value.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [r, g, b, a];
  };

  // Nothing sticks out of the box it sits in (a card, a table, a pill), at every width: the nearest ancestor
  // with a background or a border holds each control and each box.
  const boxed = (el) => {
    const style = getComputedStyle(el);
    const painted = (rgba(style.backgroundColor) || [0, 0, 0, 0])[3] > 0;
    const bordered = ['Top', 'Right', 'Bottom', 'Left'].some(
      (side) => parseFloat(style[`border${side}Width`]) > 0 && style[`border${side}Style`] !== 'none');
    return painted || bordered;
  };
  for (const el of document.body.querySelectorAll('*')) {
    if (!(el.matches(interactive) || boxed(el)) || !shown(el)) continue;
    if (['absolute', 'fixed'].includes(getComputedStyle(el).position)) continue;
    let holder = el.parentElement;
    while (holder && holder !== document.body && !boxed(holder)) holder = holder.parentElement;
    if (!holder || holder === document.body) continue;
    const inner = el.getBoundingClientRect();
    const outer = holder.getBoundingClientRect();
    if (inner.left < outer.left - 0.5 || inner.right > outer.right + 0.5) {
      problems.push(`sticks out of ${describe(holder).split('>')[0]}>: ${describe(el)}`);
    }
  }

  const over = (top, bottom) => {  // top composited over an opaque bottom
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
  };
  const background = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour && colour[3] > 0) {
        layers.push(colour);
        if (colour[3] >= 1) break;
      }
    }
    let result = [255, 255, 255, 1];  // the canvas
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map((c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const seen = new Set();
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.textContent.trim() && node.parentElement && !seen.has(node.parentElement)) {
      seen.add(node.parentElement);
      texts.push(node.parentElement);
    }
  }
  const fields = 'input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea';
  for (const el of document.querySelectorAll(fields)) {
    texts.push(el);
  }
  for (const el of texts) {
    if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TITLE'].includes(el.tagName) || el.matches(':disabled')) continue;
    if (el.matches('.skip-link:not(:focus)') || !shown(el)) continue;
    const style = getComputedStyle(el);
    const back = background(el);
    const fore = over(rgba(style.color), back);
    const [light, dark] = [luminance(fore), luminance(back)].sort((x, y) => y - x);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const needed = large ? 3 : 4.5;
    if (ratio < needed - 0.005) {
      const behind = `rgb(${back.slice(0, 3).map(Math.round)})`;
      problems.push(`contrast ${ratio.toFixed(2)}:1 < ${needed}:1 (${style.color} on ${behind}): ${describe(el)}`);
    }
  }
  return problems;
}
"""


class Visits:
    """The pages visited, each checked at every width; the problems found, by page and width."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.templates: set[str] = set()
        self.problems: list[str] = []
        self.shots = 0
        if SCREENSHOTS:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def check(self, page: Page, template: str, who: str) -> None:
        self.templates.add(template)
        await page.wait_for_load_state("load")
        await expect(page.locator("main#main")).to_be_visible()
        for width in (*PHONE_WIDTHS, DESKTOP_WIDTH):
            await page.set_viewport_size({"width": width, "height": 800})
            found = Counter(await page.evaluate(AUDIT_JS, width != DESKTOP_WIDTH))
            if SCREENSHOTS and width != DESKTOP_WIDTH:
                self.shots += 1
                name = re.sub(r"[^\w.-]+", "_", f"{self.shots:02d}-{who}-{template}-{width}")
                await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
            where = f"{template} ({page.url.removeprefix(self.server_url)}, {who}, {width} px)"
            self.problems.extend(f"{where}: {problem}" + (f" (×{count})" if count > 1 else "")
                                 for problem, count in found.items())

    async def visit(self, page: Page, url: str, template: str, who: str, *, status: int = 200) -> None:
        response = await page.goto(url)
        assert response is not None and response.status == status, (url, who, response and response.status)
        assert page.url == self.server_url + url, f"{url} ({who}) went to {page.url}"
        await self.check(page, template, who)


def error_request(path: str):
    """A visitor's request as the middleware leaves it, for the error pages rendered outside the server."""
    from django.contrib.messages.storage.cookie import CookieStorage

    request = RequestFactory().get(path)
    request._messages = CookieStorage(request)  # noqa: SLF001 - what the messages middleware sets
    request.user = auth.ANONYMOUS  # the 503 page is shown to a visitor; the others set it themselves
    return request


def rendered_error_page(template_view, path: str) -> str:
    """An error page as Django renders it, for the errors the real server cannot be made to show."""
    return template_view(error_request(path)).content.decode()


async def rendered_busy_page(path: str) -> str:
    """The 429 of a sign-up or log-in refused because the line of password hashes is full: a state a test
    server reaches only with hashes held on purpose (tests/plumbing/test_password_gate.py does)."""
    from events.views.busy import refused_when_hashing_is_busy
    from hyperion.threadgate import GateFull

    async def hashing_line_full(request):
        raise GateFull(30)

    return (await refused_when_hashing_is_busy(hashing_line_full)(error_request(path))).content.decode()


def serve(html: str, status: int):
    async def fulfill(route) -> None:
        await route.fulfill(status=status, body=html, content_type="text/html; charset=utf-8")
    return fulfill


async def log_in_as(page: Page, user_id: int, base_url: str) -> None:
    """A real server-side session, its cookie given to the browser (quicker than the log-in form)."""
    from django.conf import settings

    async with db.write_session() as session:
        token = await auth.session_create(session, user_id=user_id)
    await page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": token, "url": base_url}])


async def test_every_page_fits_a_phone_and_reads_well(server, new_page):
    from events.views import errors
    from hyperion.errors import service_unavailable

    site = await seed()
    visits = Visits(server.base_url)
    event, slug = site.event, site.event_slug
    public_pages = [
        ("/", "events/home.html"),
        ("/calendar/", "events/calendar_month.html"),
        (f"/calendar/week/?week={(datetime.now(PARIS).date() + timedelta(days=3)).isoformat()}",
         "events/calendar_week.html"),
        (f"/events/{slug}/", "events/detail.html"),
        (f"/associations/{site.association_slug}/", "events/association.html"),
        ("/associations/", "events/associations.html"),
    ]

    # Logged out (in French, the site's language: the longer words).
    visitor = await new_page(locale="fr-FR")
    for url, template in [*public_pages, ("/account/login/", "account/login.html"),
                          ("/account/signup/", "account/signup.html")]:
        await visits.visit(visitor, url, template, "visitor")
    await visits.visit(visitor, "/no-such-page/", "errors/404.html", "visitor", status=404)
    for view, template, status in ((errors.bad_request, "errors/400.html", 400),
                                   (errors.server_error, "errors/500.html", 500),
                                   (service_unavailable, "errors/503.html", 503)):
        html = rendered_error_page(view, "/")
        url = f"/test-error-{status}/"
        await visitor.route(f"**{url}", serve(html, status))
        await visits.visit(visitor, url, template, "visitor", status=status)
    await visitor.route("**/test-error-429/", serve(await rendered_busy_page("/account/signup/"), 429))
    await visits.visit(visitor, "/test-error-429/", "errors/429.html", "visitor", status=429)
    # The account pages reached through e-mails and forms.
    from events.accounts import queries as account_queries
    from events.accounts import tokens
    async with db.read_session() as session:
        student_state = await account_queries.account_state(session, user_id=site.student)
    await visits.visit(visitor, f"/account/reset/{tokens.make(tokens.RESET, student_state)}/",
                       "account/password_reset.html", "visitor")
    await visits.visit(visitor, "/account/verify/not-a-link/", "account/link_invalid.html", "visitor", status=400)
    await visits.visit(visitor, "/account/password/forgot/", "account/password_reset_request.html", "visitor")
    await visitor.get_by_label("E-mail").fill("someone.with.a.long.address@etu.hyperion.test")
    await visitor.get_by_role("main").get_by_role("button").click()
    await visits.check(visitor, "account/password_reset_sent.html", "visitor")
    await visitor.goto("/account/signup/")
    for label, value in (("E-mail de l'école", "new.student@etu.hyperion.test"), ("Nom affiché", "Nouvelle"),
                         ("Mot de passe", "Velociraptor-2027!"), ("Confirmer le mot de passe", "Velociraptor-2027!")):
        await visitor.get_by_label(label, exact=True).fill(value)
    await visitor.get_by_role("main").get_by_role("button").click()
    await visits.check(visitor, "account/signup_done.html", "visitor")

    # A student (in English).
    student = await new_page(locale="en-US")
    await log_in_as(student, site.student, server.base_url)
    for url, template in [*public_pages, ("/me/events/", "events/my_events.html"),
                          ("/account/", "account/account.html"),
                          ("/account/password/", "account/password_change.html"),
                          ("/account/notifications/", "account/notifications.html"),
                          ("/account/delete/", "account/delete.html"),
                          (f"/me/tickets/{site.registration}/", "events/ticket.html")]:
        await visits.visit(student, url, template, "student")
    await visits.visit(student, "/manage/", "errors/403.html", "student", status=403)
    # Registering for an event at the same time as one of theirs asks first.
    await student.goto(f"/events/{site.overlapping_slug}/")
    await student.get_by_role("button", name="Register").click()
    await expect(student.get_by_role("button", name=re.compile("Register anyway|Yes", re.I))).to_be_visible()
    await visits.check(student, "events/register_confirm.html", "student")
    # An event that asks a required question, sent without an answer: the questions again, with the error.
    await factories.event(association_id=site.association, slug="quiz", title="Quiz de rentrée")
    async with db.write_session() as session:
        quiz = (await session.execute(select(Event.id).where(Event.slug == "quiz"))).scalar_one()
    async with db.write_session() as session:
        await staff_questions.question_add(session, actor=Actor(id=site.staff, is_staff=True), event_id=quiz,
                                           kind="text", label=f"Régime alimentaire {LONG_WORD}", required=True)
    await student.goto("/events/quiz/")
    async with student.expect_response(lambda response: response.status == 400):
        await student.get_by_role("button", name="Register").click()
    await visits.check(student, "events/answers.html", "student")
    # A form sent with a stale CSRF token.
    await student.goto("/account/password/")
    await student.locator("main input[name=csrfmiddlewaretoken]").evaluate("input => input.value = 'stale'")
    async with student.expect_response(lambda response: response.status == 403):
        await student.get_by_role("main").get_by_role("button").first.click()
    await visits.check(student, "errors/403_csrf.html", "student")

    # Staff (in French).
    staff = await new_page(locale="fr-FR")
    await log_in_as(staff, site.staff, server.base_url)
    staff_pages = [
        ("/manage/", "staff/dashboard.html"),
        ("/manage/queue/", "staff/queue.html"),
        ("/manage/events/", "staff/events.html"),
        ("/manage/events/new/", "staff/event_form.html"),
        ("/manage/events/series/", "staff/event_form.html"),
        (f"/manage/events/{event}/", "staff/event.html"),
        (f"/manage/events/{event}/edit/", "staff/event_form.html"),
        (f"/manage/events/{site.submitted}/decline/", "staff/reason.html"),
        (f"/manage/events/{event}/cancel/", "staff/reason.html"),
        (f"/manage/events/{site.draft}/delete/", "staff/confirm.html"),
        (f"/manage/events/{event}/attendees/", "staff/attendees.html"),
        (f"/manage/events/{event}/attendees/{site.registration}/remove/", "staff/confirm.html"),
        (f"/manage/events/{event}/checkin/", "staff/checkin.html"),
        (f"/manage/events/{event}/message/", "staff/message.html"),
        (f"/manage/events/{event}/statistics/", "staff/statistics.html"),
        (f"/manage/events/{event}/questions/", "staff/questions.html"),
        (f"/manage/events/{event}/poster/", "staff/image_form.html"),
        ("/manage/associations/", "staff/associations.html"),
        ("/manage/associations/new/", "staff/association_form.html"),
        (f"/manage/associations/{site.association}/edit/", "staff/association_form.html"),
        (f"/manage/associations/{site.association}/members/", "staff/members.html"),
        (f"/manage/associations/{site.association}/logo/", "staff/image_form.html"),
        ("/manage/users/", "staff/users.html"),
        ("/manage/audit/", "staff/audit.html"),
        ("/manage/outbox/", "staff/outbox.html"),
    ]
    for url, template in staff_pages:
        await visits.visit(staff, url, template, "staff")

    # An association's manager, who sees the management area without the staff's rights.
    manager = await new_page(locale="fr-FR")
    await log_in_as(manager, site.manager, server.base_url)
    for url, template in [("/manage/", "staff/dashboard.html"),
                          (f"/manage/events/{event}/attendees/", "staff/attendees.html"),
                          (f"/manage/events/{event}/statistics/", "staff/statistics.html"),
                          (f"/manage/associations/{site.association}/members/", "staff/members.html")]:
        await visits.visit(manager, url, template, "manager")

    missing = full_page_templates() - visits.templates
    assert not missing, f"page templates this test does not visit (add a URL for each): {sorted(missing)}"
    assert not visits.problems, f"{len(visits.problems)} problems on phones:\n" + "\n".join(visits.problems)


async def test_desktop_screenshots(server, new_page):
    """Screenshots at 1280 px of the home page, the month calendar and an attendees list, under
    test-artifacts/desktop/, to compare the desktop layout before and after a change of the stylesheet."""
    site = await seed()
    folder = ARTIFACTS / "desktop"
    folder.mkdir(parents=True, exist_ok=True)
    page = await new_page(locale="fr-FR", viewport={"width": 1280, "height": 900})
    await log_in_as(page, site.staff, server.base_url)
    for name, url in (("home", "/"), ("calendar", "/calendar/"),
                      ("week", f"/calendar/week/?week={(datetime.now(PARIS).date() + timedelta(days=3))}"),
                      ("attendees", f"/manage/events/{site.event}/attendees/"),
                      ("checkin", f"/manage/events/{site.event}/checkin/")):
        response = await page.goto(url)
        assert response is not None and response.status == 200, url
        await page.wait_for_load_state("load")
        await page.screenshot(path=folder / f"{name}.png", full_page=True)


async def test_month_calendar_is_an_agenda_on_a_phone(server, new_page):
    """On a phone the month is the list of its days that have events, each event on its own line in full; on
    a desktop it stays the grid of weeks. A month without events says so on a phone."""
    bde = await factories.association()
    first = datetime.now(PARIS).date().replace(day=1)
    busy = [first + timedelta(days=4), first + timedelta(days=11)]
    for n, day in enumerate(busy):
        await factories.event(association_id=bde, slug=f"e{n}", title=f"{LONG_TITLE} {n}", starts_at=at(day, 18))
    page = await new_page(locale="en-US", viewport={"width": 320, "height": 700})
    await page.goto("/calendar/")
    headers = page.locator(".calendar-month th")
    await expect(headers).to_have_count(7)
    for header in await headers.all():
        await expect(header).to_be_hidden()
    days = page.locator(".calendar-month td")
    shown_days = [cell for cell in await days.all() if await cell.is_visible()]
    assert len(shown_days) == len(busy)
    for n, (cell, day) in enumerate(zip(shown_days, busy, strict=True)):
        await expect(cell).to_contain_text(f"{day.day} {std_calendar.month_name[day.month]}")
        link = cell.get_by_role("link", name=f"{LONG_TITLE} {n}")
        await expect(link).to_be_visible()
        box = await link.bounding_box()
        assert box is not None and box["height"] >= 44, box  # the title wraps over lines, in full
    await expect(page.get_by_text("Nothing planned.")).to_be_hidden()

    await page.set_viewport_size({"width": 1280, "height": 900})
    for header in await headers.all():
        await expect(header).to_be_visible()
    assert len([cell for cell in await days.all() if await cell.is_visible()]) >= 28

    await page.goto(f"/calendar/?month={first.year + 1}-{first.month:02d}")
    await expect(page.get_by_text("Nothing planned.")).to_be_hidden()
    await page.set_viewport_size({"width": 320, "height": 700})
    await expect(page.get_by_text("Nothing planned.")).to_be_visible()
