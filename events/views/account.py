"""Accounts: sign up, confirm the address, log in and out, change or reset the password, the account page, the
language switch."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from events.accounts import auth, follows, throttle
from events.accounts import queries as account_queries
from events.accounts import services as account_services
from events.accounts.forms import (
    AccountDeleteForm,
    LoginForm,
    NewPasswordForm,
    NotificationPreferencesForm,
    PasswordChangeForm,
    PasswordResetRequestForm,
    SignupForm,
)
from events.models import utcnow
from events.ops import personal_data
from events.ops import services as ops_services
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
        try:
            async with db.write_session() as session:
                await account_services.signup(
                    session, email=data["email"], display_name=data["display_name"], password=data["password1"],
                    promo=data["promo"], language=translation.get_language() or "fr", address=client_address(request))
        except throttle.Throttled as error:
            form.add_error(None, error.message)
            return render(request, "account/signup.html", {"form": form}, status=429)
        # The same page whether the address was free or already had an account (its owner hears by e-mail).
        return render(request, "account/signup_done.html", {"email": data["email"]})
    return render(request, "account/signup.html", {"form": form}, status=400 if form.errors else 200)


@refused_when_hashing_is_busy
async def login(request):
    if request.user.is_authenticated and request.method == "GET":
        return HttpResponseRedirect(safe_next(request))
    form = LoginForm(request.POST or None)
    status = 400 if form.errors else 200
    if request.method == "POST" and form.is_valid():
        try:
            async with db.write_session() as session:
                token = await account_services.login(session, email=form.cleaned_data["email"],
                                                     password=form.cleaned_data["password"],
                                                     address=client_address(request))
        except (account_services.LoginThrottled, account_services.LoginRefused) as error:
            form.add_error(None, error.message)
            status = 429 if isinstance(error, throttle.Throttled) else 400
        else:
            auth.login(request, token)
            return HttpResponseRedirect(safe_next(request))
    return render(request, "account/login.html", {"form": form, "next": request.POST.get("next")
                                                  or request.GET.get("next", "")}, status=status)


@require_POST
@login_required
async def verification_resend(request):
    if request.user.is_verified:
        messages.info(request, _("Your e-mail address is already confirmed."))
    else:
        try:
            async with db.write_session() as session:
                await account_services.verification_resend(session, user_id=request.user.id,
                                                           email=request.user.email,
                                                           address=client_address(request))
        except throttle.Throttled as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("We sent the link again to %(email)s.") % {"email": request.user.email})
    return HttpResponseRedirect(safe_next(request, "account"))


async def email_verify(request, token: str):
    """The link of the confirmation e-mail (a GET: the link itself is the proof; it works once)."""
    try:
        async with db.write_session() as session:
            await account_services.email_verify(session, token=token[:200])
    except account_services.InvalidLink as error:
        return render(request, "account/link_invalid.html", {"message": error.message}, status=400)
    messages.success(request, _("Your e-mail address is confirmed: you can register for events."))
    return redirect("home" if request.user.is_authenticated else "login")


async def password_reset_request(request):
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        async with db.write_session() as session:
            await account_services.password_reset_request(session, email=form.cleaned_data["email"],
                                                          address=client_address(request))
        # The same page whether the address has an account or not.
        return render(request, "account/password_reset_sent.html", {"email": form.cleaned_data["email"]})
    return render(request, "account/password_reset_request.html", {"form": form},
                  status=400 if form.errors else 200)


@refused_when_hashing_is_busy
async def password_reset(request, token: str):
    token = token[:200]
    try:
        async with db.read_session() as session:
            state = await account_services.reset_link_account(session, token=token)
    except account_services.InvalidLink as error:
        return render(request, "account/link_invalid.html", {"message": error.message}, status=400)
    form = NewPasswordForm(request.POST or None, owner_email=state.email, owner_name=state.display_name)
    if request.method == "POST" and form.is_valid():
        try:
            async with db.write_session() as session:
                session_token = await account_services.password_reset(
                    session, token=token, new_password=form.cleaned_data["new_password1"])
        except account_services.InvalidLink as error:
            return render(request, "account/link_invalid.html", {"message": error.message}, status=400)
        # Every other session of the account ended; this browser is logged in with the new password.
        auth.login(request, session_token)
        messages.success(request, _("Your password is changed and you are logged in."))
        return redirect("account")
    response = render(request, "account/password_reset.html", {"form": form}, status=400 if form.errors else 200)
    add_never_cache_headers(response)
    return response


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
async def account_delete(request):
    """Close my account: the student's password, then their places to come released and their personal data
    gone (events.ops.services.account_delete); logged out, back to the home page."""
    form = AccountDeleteForm(request.POST or None)
    status = 400 if form.errors else 200
    if request.method == "POST" and form.is_valid():
        try:
            async with db.write_session() as session:
                await account_services.password_confirm(session, user_id=request.user.id,
                                                        password=form.cleaned_data["password"])
                await ops_services.account_delete(session, user_id=request.user.id)
        except account_services.WrongCurrentPassword as error:
            form.add_error("password", error.message)
            status = 400
        except throttle.Throttled as error:
            form.add_error(None, error.message)
            status = 429
        except ops_services.StaffAccountNotClosedHere as error:
            form.add_error(None, error.message)
            status = 400
        else:
            auth.logout(request)
            messages.success(request, _("Your account is closed: your places to come were released and your "
                                        "personal data deleted."))
            return redirect("home")
    return render(request, "account/delete.html", {"form": form}, status=status)


@login_required
async def account_data(request):
    """Download my data: everything the site holds about the student, as a JSON file."""
    async with db.read_session() as session:
        data = await personal_data.personal_data(session, user_id=request.user.id)
    response = JsonResponse({"exported_at": utcnow(), **data}, json_dumps_params={"ensure_ascii": False, "indent": 2})
    response["Content-Disposition"] = 'attachment; filename="hyperion-my-data.json"'
    add_never_cache_headers(response)
    return response


@login_required
@refused_when_hashing_is_busy
async def password_change(request):
    form = PasswordChangeForm(request.POST or None, owner_email=request.user.email,
                              owner_name=request.user.display_name)
    status = 400 if form.errors else 200
    if request.method == "POST" and form.is_valid():
        try:
            async with db.write_session() as session:
                await account_services.password_change(
                    session, user_id=request.user.id, current_password=form.cleaned_data["current_password"],
                    new_password=form.cleaned_data["new_password1"], keep_token=request.user.session_token)
        except account_services.WrongCurrentPassword as error:
            form.add_error("current_password", error.message)
            status = 400
        except throttle.Throttled as error:
            form.add_error(None, error.message)
            status = 429
        else:
            messages.success(request, _("Your password has been changed."))
            return redirect("account")
    return render(request, "account/password_change.html", {"form": form}, status=status)


@require_POST
@login_required
async def feed_token(request):
    action = request.POST.get("action")
    async with db.write_session() as session:
        if action == "revoke":
            await account_services.feed_token_revoke(session, user_id=request.user.id)
            messages.success(request, _("Your calendar feed address is disabled."))
            return redirect("account")
        try:
            address = await account_services.feed_token_regenerate(session, user_id=request.user.id)
        except account_services.EmailNotVerified as error:
            messages.error(request, error.message)
            return redirect("account")
        account = await account_queries.user_account(session, user_id=request.user.id)  # on the same connection
    messages.success(request, _("Your calendar feed has a new secret address; the old one no longer works.")
                     if address.replaced else _("Your calendar feed address is ready: add it to your "
                                                "calendar application."))
    # Only the token's hash is stored, so this answer is the one chance to show the address: the account page
    # itself, rendered here rather than after a redirect (a message would carry the secret in a cookie), and
    # kept out of every cache.
    response = render(request, "account/account.html", {
        "account": account, "feed_url": request.build_absolute_uri(reverse("feed_personal", args=[address.token]))})
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
    form = NotificationPreferencesForm(request.POST or None, opt_outs=account.email_opt_outs,
                                       follow_emails=account.follow_emails)
    if request.method == "POST" and form.is_valid():
        async with db.write_session() as session:
            await account_services.user_email_opt_outs_set(session, user_id=request.user.id, opt_outs=form.opt_outs())
            await follows.follow_emails_set(session, user_id=request.user.id, frequency=form.follow_emails())
        messages.success(request, _("Your e-mail preferences are saved."))
        return redirect("notification_preferences")
    return render(request, "account/notifications.html", {"form": form})
