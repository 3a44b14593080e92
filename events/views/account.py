"""Accounts: sign up, log in and out, change password, the account page, the language switch."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from events.accounts import auth
from events.accounts import queries as account_queries
from events.accounts import services as account_services
from events.accounts.forms import LoginForm, NotificationPreferencesForm, PasswordChangeForm, SignupForm
from events.views.busy import refused_when_hashing_is_busy
from events.views.helpers import client_address, login_required, safe_next
from hyperion import db


@refused_when_hashing_is_busy
async def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        password_hash = await auth.password_hash(data["password1"])
        try:
            async with db.write_session() as session:
                user_id = await account_services.user_create(
                    session, email=data["email"], display_name=data["display_name"], promo=data["promo"],
                    password_hash=password_hash, language=translation.get_language() or "fr")
                auth.login(request, await auth.session_create(session, user_id=user_id))
        except account_services.EmailTaken as error:
            form.add_error("email", error.message)
        else:
            messages.success(request, _("Welcome, %(name)s! Your account is ready.") % {"name": data["display_name"]})
            return HttpResponseRedirect(safe_next(request))
    return render(request, "account/signup.html", {"form": form, "next": request.GET.get("next", "")},
                  status=400 if form.errors else 200)


@refused_when_hashing_is_busy
async def login(request):
    if request.user.is_authenticated and request.method == "GET":
        return HttpResponseRedirect(safe_next(request))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        email, password = form.cleaned_data["email"], form.cleaned_data["password"]
        address = client_address(request)
        try:
            async with db.write_session() as session:
                await account_services.login_throttle_check(session, email=email, address=address)
        except account_services.LoginThrottled as error:
            form.add_error(None, error.message)
            return render(request, "account/login.html", {"form": form, "next": request.POST.get("next", "")},
                          status=429)
        async with db.read_session() as session:
            credentials = await account_queries.user_credentials(session, email=email)
        matches = await auth.password_matches(password, credentials.password_hash if credentials else None)
        async with db.write_session() as session:
            if credentials is None or not matches or not credentials.is_active:
                await account_services.login_failure_record(session, email=email, address=address)
                # One message whatever was wrong: the page never tells whether an account exists.
                form.add_error(None, _("E-mail or password incorrect."))
                status = 400
            else:
                await account_services.login_failures_clear(session, email=email)
                auth.login(request, await auth.session_create(session, user_id=credentials.id))
                return HttpResponseRedirect(safe_next(request))
    elif form.errors:
        status = 400
    return render(request, "account/login.html", {"form": form, "next": request.GET.get("next", "")},
                  status=status)


@require_POST
async def logout(request):
    if request.user.is_authenticated:
        async with db.write_session() as session:
            await auth.session_end(session, token=request.user.session_token)
    auth.logout(request)
    messages.success(request, _("You are logged out."))
    return redirect("home")


@login_required
async def account(request):
    async with db.read_session() as session:
        account = await account_queries.user_account(session, user_id=request.user.id)
    return render(request, "account/account.html", {"account": account, "feed_url": None})


@login_required
@refused_when_hashing_is_busy
async def password_change(request):
    form = PasswordChangeForm(request.POST or None, owner_email=request.user.email,
                              owner_name=request.user.display_name)
    if request.method == "POST" and form.is_valid():
        async with db.read_session() as session:
            account = await account_queries.user_account(session, user_id=request.user.id)
        if not await auth.password_matches(form.cleaned_data["current_password"], account.password_hash):
            form.add_error("current_password", _("This is not your current password."))
        else:
            new_hash = await auth.password_hash(form.cleaned_data["new_password1"])
            async with db.write_session() as session:
                await account_services.user_password_set(session, user_id=request.user.id, password_hash=new_hash)
                # Every other browser logged in as this user is logged out.
                await auth.sessions_end_for_user(session, user_id=request.user.id,
                                                 keep_token=request.user.session_token)
            messages.success(request, _("Your password has been changed."))
            return redirect("account")
    return render(request, "account/password_change.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
@login_required
async def feed_token(request):
    action = request.POST.get("action")
    async with db.write_session() as session:
        if action == "revoke":
            await account_services.feed_token_revoke(session, user_id=request.user.id)
            messages.success(request, _("Your calendar feed address is disabled."))
            return redirect("account")
        address = await account_services.feed_token_regenerate(session, user_id=request.user.id)
    messages.success(request, _("Your calendar feed has a new secret address; the old one no longer works.")
                     if address.replaced else _("Your calendar feed address is ready: add it to your "
                                                "calendar application."))
    # Only the token's hash is stored, so this answer is the one chance to show the address: the account page
    # itself, rendered here rather than after a redirect (a message would carry the secret in a cookie), and
    # kept out of every cache.
    async with db.read_session() as session:
        account = await account_queries.user_account(session, user_id=request.user.id)
    response = render(request, "account/account.html", {
        "account": account, "feed_url": request.build_absolute_uri(f"/feeds/me/{address.token}.ics")})
    add_never_cache_headers(response)
    return response


@require_http_methods(["GET", "POST"])
async def set_language(request):
    """Django's set_language, as an async view (Django's own is sync and would hop to a thread).

    Visitors who are not logged in switch with a GET form: the language cookie is all it changes, so their
    pages carry no form that needs a CSRF token, and browsing the site sets no cookie at all (a CSRF
    secret costs 64 reads of the system's random source per page for a visitor without cookies). A
    logged-in student's switch also saves the language of their e-mails: that write is a POST, behind
    Django's CSRF check like every other one.
    """
    data = request.POST if request.method == "POST" else request.GET
    language = data.get("language", "")
    response = HttpResponseRedirect(safe_next(request))
    if request.method == "GET":
        add_never_cache_headers(response)  # a shared cache must not hand this cookie to someone else
    if language in dict(settings.LANGUAGES):
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600,
                            samesite="Lax", secure=settings.SESSION_COOKIE_SECURE, httponly=True)
        if request.method == "POST" and request.user.is_authenticated:
            async with db.write_session() as session:
                await account_services.user_language_set(session, user_id=request.user.id, language=language)
    return response


@login_required
async def notification_preferences(request):
    """The page List-Unsubscribe points at: one switch per family of e-mails."""
    async with db.read_session() as session:
        account = await account_queries.user_account(session, user_id=request.user.id)
    form = NotificationPreferencesForm(request.POST or None, opt_outs=account.email_opt_outs)
    if request.method == "POST" and form.is_valid():
        async with db.write_session() as session:
            await account_services.user_email_opt_outs_set(session, user_id=request.user.id, opt_outs=form.opt_outs())
        messages.success(request, _("Your e-mail preferences are saved."))
        return redirect("notification_preferences")
    return render(request, "account/notifications.html", {"form": form})
