"""``request.user`` from the session cookie: the site's own ``_USER_FOR_TOKEN`` statement, run sync."""

from __future__ import annotations

from django.conf import settings

from bench.baseline import db
from events.accounts import auth
from events.models import utcnow


def session_user(get_response):
    def middleware(request):
        request.user = auth.ANONYMOUS
        token = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if token and len(token) <= 100:
            with db.read_session() as session:
                row = session.execute(auth._USER_FOR_TOKEN,
                                      {"token_hash": auth._token_hash(token), "now": utcnow()}).first()
            if row is not None:
                request.user = auth.CurrentUser(
                    id=row.id, email=row.email, display_name=row.display_name, is_staff=row.is_staff,
                    language=row.language, session_token=token, runs_an_association=bool(row.runs_an_association),
                    approval_queue_count=row.approval_queue_count or 0)
        return get_response(request)

    return middleware
