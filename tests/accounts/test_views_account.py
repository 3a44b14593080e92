"""Accounts: sign up, log in and out, password change, throttling, CSRF, cookies, language."""

import hashlib
import re

import pytest
from django.conf import settings
from django.test import AsyncClient, override_settings
from sqlalchemy import func, select

from events.models import AuthSession, User
from tests import factories, support

GOOD_PASSWORD = "correct-horse-battery"


def signup_data(**overrides) -> dict:
    return {"email": "Lea.Martin@etu.hyperion.test", "display_name": "Léa Martin", "promo": "2027",
            "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD, **overrides}


async def test_signup_creates_the_account_hashes_the_password_and_asks_to_confirm_the_address(async_client, session):
    response = await async_client.post("/account/signup/", signup_data(), headers={"Accept-Language": "en"})
    assert response.status_code == 200 and "Check your mailbox" in response.text
    user = (await session.execute(select(User.email, User.display_name, User.promo, User.password_hash,
                                         User.email_verified_at))).one()
    assert user.email == "lea.martin@etu.hyperion.test" and user.display_name == "Léa Martin" and user.promo == 2027
    assert user.password_hash.startswith("md5$") and GOOD_PASSWORD not in user.password_hash  # Django's hasher
    assert user.email_verified_at is None
    # Logging in is the owner's next step (sign-up answers the same for a taken address, so it logs nobody in).
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    logged_in = await async_client.post("/account/login/", {"email": user.email, "password": GOOD_PASSWORD})
    cookie = logged_in.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert "Léa Martin" in (await async_client.get("/")).text


@pytest.mark.parametrize("overrides, message", [
    ({"password1": "short", "password2": "short"}, "too short"),
    ({"password1": "12345678901234", "password2": "12345678901234"}, "entirely numeric"),
    ({"password1": "password123456", "password2": "password123456"}, "too common"),
    ({"password2": "something-else-entirely"}, "The two passwords differ"),
    ({"email": "not-an-email"}, "valid email"),
    ({"display_name": ""}, "required"),
    ({"promo": "1800"}, "greater than or equal to 1950"),
])
async def test_signup_with_bad_input_shows_the_error_and_creates_nothing(async_client, session, overrides, message):
    response = await async_client.post("/account/signup/", signup_data(**overrides),
                                       headers={"Accept-Language": "en"})
    assert response.status_code == 400
    assert message in response.text
    assert (await session.execute(select(func.count(User.id)))).scalar_one() == 0


HIDDEN_CONTROL = "This text contains invisible control characters (such as right-to-left marks): remove them."


@pytest.mark.parametrize("display_name", [
    "Léa \u202egnp.exe",  # right-to-left override: would show "Léa exe.png"
    "Léa\u2066Martin\u2069", "Léa\u200fMartin", "Léa\u061cMartin", "Léa\x07Martin", "Léa\u00adMartin",
])
async def test_signup_refuses_a_display_name_with_bidi_or_control_characters(async_client, session, display_name):
    response = await async_client.post("/account/signup/", signup_data(display_name=display_name),
                                       headers={"Accept-Language": "en"})
    assert response.status_code == 400 and HIDDEN_CONTROL in response.text
    assert (await session.execute(select(func.count(User.id)))).scalar_one() == 0
    french = await async_client.post("/account/signup/", signup_data(display_name=display_name),
                                     headers={"Accept-Language": "fr"})
    assert french.status_code == 400 and "caractères de contrôle invisibles" in french.text


async def test_signup_keeps_names_whose_joiners_only_shape_text(async_client, session):
    """Zero-width joiners build emoji sequences and shape Persian or Indic names: they never reorder text."""
    response = await async_client.post("/account/signup/", signup_data(display_name="Léa 👩\u200d💻"))
    assert response.status_code == 200
    assert (await session.execute(select(User.display_name))).scalar_one() == "Léa 👩\u200d💻"


async def test_signup_with_a_taken_email_creates_nothing_and_does_not_say_so(async_client, session):
    """The page does not tell that the address has an account (tests/accounts/test_enumeration.py compares)."""
    await factories.user(email="lea.martin@etu.hyperion.test")
    response = await async_client.post("/account/signup/", signup_data(), headers={"Accept-Language": "en"})
    assert response.status_code == 200 and "Check your mailbox" in response.text
    assert "already exists" not in response.text
    assert (await session.execute(select(func.count(User.id)))).scalar_one() == 1


@override_settings(SIGNUP_EMAIL_DOMAINS=["etu.hyperion.test"])
async def test_signup_requires_a_school_email_when_domains_are_configured(async_client, session):
    response = await async_client.post("/account/signup/", signup_data(email="lea@gmail.com"),
                                       headers={"Accept-Language": "en"})
    assert response.status_code == 400 and "school e-mail" in response.text
    assert (await async_client.post("/account/signup/", signup_data())).status_code == 200


async def _account(email="bob@etu.test", password=GOOD_PASSWORD) -> int:
    from events.accounts import auth

    return await factories.user(email=email, display_name="Bob", password_hash=await auth.password_hash(password))


async def test_login_and_logout_end_the_session_on_the_server(async_client, session):
    await _account()
    response = await async_client.post("/account/login/", {"email": "BOB@etu.test", "password": GOOD_PASSWORD})
    assert response.status_code == 302
    token = response.cookies[settings.SESSION_COOKIE_NAME].value
    assert "Bob" in (await async_client.get("/")).text
    assert (await async_client.post("/account/logout/")).status_code == 302
    assert (await session.execute(select(func.count()).select_from(AuthSession))).scalar_one() == 0
    # A copy of the old cookie is useless now.
    stolen = AsyncClient()
    stolen.cookies[settings.SESSION_COOKIE_NAME] = token
    assert "Bob" not in (await stolen.get("/")).text
    assert (await stolen.get("/me/events/")).status_code == 302


async def test_wrong_password_and_unknown_account_get_the_same_answer(async_client):
    await _account()
    wrong = await async_client.post("/account/login/", {"email": "bob@etu.test", "password": "nope-nope-nope"},
                                    headers={"Accept-Language": "en"})
    unknown = await async_client.post("/account/login/", {"email": "nobody@etu.test", "password": "nope-nope"},
                                      headers={"Accept-Language": "en"})
    assert wrong.status_code == unknown.status_code == 400
    assert "E-mail or password incorrect." in wrong.text and "E-mail or password incorrect." in unknown.text


async def test_repeated_failed_logins_are_throttled_then_the_owner_can_log_in_later(async_client, session):
    await _account()
    for _ in range(5):
        await async_client.post("/account/login/", {"email": "bob@etu.test", "password": "wrong-password"})
    blocked = await async_client.post("/account/login/", {"email": "bob@etu.test", "password": GOOD_PASSWORD},
                                      headers={"Accept-Language": "en"})
    assert blocked.status_code == 429 and "Too many failed log-in attempts" in blocked.text
    assert settings.SESSION_COOKIE_NAME not in blocked.cookies
    # The delay runs out: once it has passed, the real owner gets in.
    from datetime import timedelta

    from sqlalchemy import update

    from events.models import Throttle, utcnow
    from hyperion import db
    async with db.write_session() as write, write.begin():  # raw: the delay runs out (no service moves the clock)
        await write.execute(update(Throttle).values(next_allowed_at=utcnow() - timedelta(seconds=1)))
    allowed = await async_client.post("/account/login/", {"email": "bob@etu.test", "password": GOOD_PASSWORD})
    assert allowed.status_code == 302


async def test_failed_logins_from_one_address_are_throttled_across_accounts(async_client):
    for number in range(30):
        await async_client.post("/account/login/", {"email": f"guess{number}@etu.test", "password": "x" * 10})
    await _account()
    blocked = await async_client.post("/account/login/", {"email": "bob@etu.test", "password": GOOD_PASSWORD})
    assert blocked.status_code == 429


async def test_login_redirects_back_to_next_but_never_off_site(async_client):
    await _account()
    response = await async_client.post("/account/login/?next=/me/events/",
                                       {"email": "bob@etu.test", "password": GOOD_PASSWORD, "next": "/me/events/"})
    assert response["Location"] == "/me/events/"
    await async_client.post("/account/logout/")
    response = await async_client.post("/account/login/", {"email": "bob@etu.test", "password": GOOD_PASSWORD,
                                                           "next": "https://evil.example/"})
    assert response["Location"] == "/"


async def test_password_change_checks_the_current_one_and_logs_out_other_browsers(async_client, session):
    user_id = await _account()
    await support.login(async_client, user_id)
    other_browser = AsyncClient()
    await support.login(other_browser, user_id)
    wrong = await async_client.post("/account/password/", {
        "current_password": "not-it-at-all", "new_password1": "brand-new-secret-1", "new_password2":
        "brand-new-secret-1"}, headers={"Accept-Language": "en"})
    assert wrong.status_code == 400 and "not your current password" in wrong.text
    ok = await async_client.post("/account/password/", {
        "current_password": GOOD_PASSWORD, "new_password1": "brand-new-secret-1",
        "new_password2": "brand-new-secret-1"})
    assert ok.status_code == 302
    assert "Bob" in (await async_client.get("/")).text
    assert "Bob" not in (await other_browser.get("/")).text
    await async_client.post("/account/logout/")
    relog = await async_client.post("/account/login/", {"email": "bob@etu.test", "password": "brand-new-secret-1"})
    assert relog.status_code == 302


async def test_every_form_post_without_a_csrf_token_is_refused_and_changes_nothing(session):
    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.post("/account/signup/", signup_data(), headers={"Accept-Language": "en"})
    assert response.status_code == 403 and "Form expired" in response.text
    assert (await session.execute(select(func.count(User.id)))).scalar_one() == 0
    for path in ("/account/login/", "/account/logout/", "/language/", "/events/x/register/",
                 "/events/x/leave/", "/account/feed/", "/account/password/"):
        assert (await client.post(path, {})).status_code == 403, path


async def test_signup_form_with_its_csrf_token_works_with_checks_on(session):
    client = AsyncClient(enforce_csrf_checks=True)
    form_page = await client.get("/account/signup/")
    token = form_page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = await client.post("/account/signup/", {**signup_data(), "csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert (await session.execute(select(func.count(User.id)))).scalar_one() == 1


async def test_pages_for_members_send_visitors_to_log_in(async_client):
    for path in ("/me/events/", "/account/", "/account/password/"):
        response = await async_client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/account/login/?next=")


async def test_language_switch_changes_the_interface_and_french_is_the_default(async_client):
    french = await async_client.get("/")
    assert 'lang="fr"' in french.text and "Événements à venir" in french.text
    response = await async_client.post("/language/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    english = await async_client.get("/")
    assert 'lang="en"' in english.text and "Upcoming events" in english.text


async def test_browsing_without_an_account_sets_no_cookie_and_switches_language_with_a_get_form():
    """A visitor who only reads pages gets no cookie (no CSRF secret: the language switch is a GET form for
    them); switching the language sets just the language cookie and comes back to the same page."""
    association_id = await factories.association()
    await factories.event(association_id=association_id)
    client = AsyncClient(enforce_csrf_checks=True)
    for path in ("/", "/calendar/", "/calendar/week/", "/events/gala/", "/associations/bde/"):
        page = await client.get(path)
        assert page.status_code == 200 and not page.cookies, (path, page.cookies)
        assert '<form method="get" action="/language/"' in page.text and "csrfmiddlewaretoken" not in page.text
    switched = await client.get("/language/", {"language": "en", "next": "/events/gala/"})
    assert switched.status_code == 302 and switched["Location"] == "/events/gala/"
    assert set(switched.cookies) == {settings.LANGUAGE_COOKIE_NAME}
    assert "no-store" in switched["Cache-Control"]  # a shared cache must not replay this cookie
    english = await client.get("/events/gala/")
    assert 'lang="en"' in english.text and "Log in to register" in english.text
    # An unknown language or a foreign "next" changes nothing and stays on the site.
    odd = await client.get("/language/", {"language": "xx", "next": "https://evil.example/"})
    assert odd.status_code == 302 and odd["Location"] == "/" and not odd.cookies


async def test_a_logged_in_students_language_switch_is_a_csrf_checked_post_that_sets_the_email_language(session):
    user_id = await _account()
    client = AsyncClient(enforce_csrf_checks=True)
    await support.login(client, user_id)
    page = await client.get("/")
    form = page.text.split('action="/language/"')[0].rsplit("<form", 1)[1]
    assert 'method="post"' in form
    token = page.text.split('action="/language/"')[1].split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    # The GET switch changes the interface only; the e-mails' language is a write, so it needs the POST.
    await client.get("/language/", {"language": "en", "next": "/"})
    assert (await session.execute(select(User.language).where(User.id == user_id))).scalar_one() == "fr"
    assert (await client.post("/language/", {"language": "en"})).status_code == 403  # no token
    assert (await session.execute(select(User.language).where(User.id == user_id))).scalar_one() == "fr"
    response = await client.post("/language/", {"language": "en", "next": "/", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert (await session.execute(select(User.language).where(User.id == user_id))).scalar_one() == "en"


async def test_feed_address_can_be_created_regenerated_and_revoked(async_client, session):
    user_id = await _account()
    await support.login(async_client, user_id)
    async_client.cookies["django_language"] = "en"
    page = (await async_client.post("/account/feed/", {"action": "regenerate"})).text
    first = re.search(r'/feeds/me/([^".]+)\.ics"', page).group(1)  # shown once, by the answer that made it
    assert len(first) >= 32 and str(user_id) != first
    assert (await session.execute(select(User.feed_token_hash))).scalar_one() == hashlib.sha256(
        first.encode()).hexdigest()
    assert "Your calendar feed address is ready" in page and "no longer works" not in page  # there was none
    assert "shown only this once" in page
    later = (await async_client.get("/account/")).text
    assert first not in later and "/feeds/me/" not in later
    assert "Your feed address is set" in later and "Make a new address" in later and "Disable my feed" in later
    page = (await async_client.post("/account/feed/", {"action": "regenerate"})).text
    second = re.search(r'/feeds/me/([^".]+)\.ics"', page).group(1)
    assert second != first
    assert "the old one no longer works" in page
    await async_client.post("/account/feed/", {"action": "revoke"})
    assert (await session.execute(select(User.feed_token_hash))).scalar_one() is None
    assert "You have no feed address yet." in (await async_client.get("/account/")).text


async def test_security_headers_are_on_every_page(async_client):
    response = await async_client.get("/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
