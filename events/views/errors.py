"""Error pages in the site's layout. Django calls these outside the views' normal path."""

from django.shortcuts import render

from events.accounts import auth


def _with_user(request):
    """An error raised before the session middleware set request.user must not break the error page."""
    if not hasattr(request, "user"):
        request.user = auth.ANONYMOUS
    return request


def bad_request(request, exception=None):
    return render(_with_user(request), "errors/400.html", status=400)


def permission_denied(request, exception=None):
    return render(_with_user(request), "errors/403.html", status=403)


def page_not_found(request, exception=None):
    return render(_with_user(request), "errors/404.html", status=404)


def server_error(request):
    return render(_with_user(request), "errors/500.html", status=500)


def csrf_failure(request, reason=""):
    return render(_with_user(request), "errors/403_csrf.html", status=403)
