"""Small tools the views share: log-in requirement, safe redirects, client address."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from events.accounts.services import EmailNotVerified
from events.rules import restrictions
from hyperion import db


def login_required(view):
    """Send anonymous visitors to the log-in page, then back here."""

    @wraps(view)
    async def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
        return await view(request, *args, **kwargs)

    return wrapper


def safe_next(request, fallback: str = "home") -> str:
    """Where to go after a form: the ``next`` parameter if it stays on this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse(fallback)


def viewer(request):
    """The logged-in student, as the rules read a student (None for a visitor)."""
    return request.user if request.user.is_authenticated else None


def may_see_or_404(request, event) -> None:
    """A members' event hidden from others is a 404 for them (its existence is not disclosed)."""
    if not restrictions.may_see(event, viewer(request), is_staff=request.user.is_staff):
        raise Http404


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


class DatabaseId:
    """A URL id that fits the database's INTEGER columns: anything larger is a 404, not a 500."""

    regex = "[0-9]{1,10}"
    MAX = 2**31 - 1

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > self.MAX:
            raise ValueError("out of range")  # Django then treats the URL as not matching
        return number

    def to_url(self, value: int) -> str:
        return str(value)


def search_text(raw: str | None, limit: int = 100) -> str:
    """A search box's text, fit for SQL: printable characters only (PostgreSQL refuses NUL in text)."""
    return "".join(char for char in (raw or "")[:limit] if char.isprintable()).strip()


async def run_service(service, /, **arguments):
    """A service called on a write session of its own: the service begins and commits its transaction, and
    the connection goes back to the pool as soon as it returns or refuses."""
    async with db.write_session() as session:
        return await service(session, **arguments)


def verified_required(view):
    """Registering (and anything else that needs a confirmed address) waits until the account's owner opened the
    link we sent: back to the page they came from, which shows why and a button to send the link again."""

    @wraps(view)
    async def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.is_verified:
            messages.error(request, EmailNotVerified.message)
            back = request.META.get("HTTP_REFERER", "")
            if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                   require_https=request.is_secure()):
                back = reverse("account")
            return redirect(back)
        return await view(request, *args, **kwargs)

    return wrapper
