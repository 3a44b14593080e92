"""POSTs answered without Django's handler when they are the common case of a rush: the app does the
request's work, and the answer is the one Django's handler gave the last request of the same kind.

At a popular opening 2,000 students ask within a second, and each ask went through Django's handler and
middleware (~0.4 ms of CPU: the request object, four middlewares, URL resolving, the response object and its
cookies) for one INSERT and a redirect that is the same for all of them: the lottery's "your entry is
recorded" answer is a 302 to the event's page with a messages cookie whose signed value depends only on the
message and its language. On one process that CPU is the queue: asks were answered with p99 2.3 s, against
the 500 ms the site promises (bench/README.md).

So an app hook (settings.QUICK_POSTS, ``hyperion.hooks.QuickPost``) may take such a POST first, in the same
admission turn Django would have had. It does the whole of the request's work itself, with Django's own
checks where Django has them (the host check, the HTTPS redirect, the CSRF check of
``CsrfViewMiddleware``, the language choice), and names the answer with a key (the event, the language, the
host and scheme). When an answer is kept under that key it is sent as it is; otherwise, or whenever the
hook is unsure (an unusual request, a failed check, anything that would change the answer), it writes
nothing and Django answers the request in full, as always. An answer is kept only when the view marks the
response as the common case under that very key (``mark_common``), and only when it has no body and sets no
cookie but the ones the hook names: a response that hands out a session, a CSRF token or a page is never
replayed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from hyperion import hooks

logger = logging.getLogger("hyperion")

# The scope entries that carry the answer's key from the hook to the view, and the view's mark back.
SCOPE_KEY = "hyperion.quick_post.key"
SCOPE_COMMON = "hyperion.quick_post.common"
# Bound on the answers kept (a few per event in its rush: one per language, host and scheme).
_ANSWERS_MAX = 512

Send = Callable[[dict], Awaitable[None]]


def mark_common(request) -> None:
    """The view's word: this response is the common answer of the quick POST in progress (if any)."""
    scope = getattr(request, "scope", None)
    if scope is not None and SCOPE_KEY in scope:
        scope[SCOPE_COMMON] = True


class QuickPosts:
    def __init__(self, quick: list[hooks.QuickPost]) -> None:
        self.quick = quick
        self.answers: dict[object, dict] = {}  # key -> the http.response.start message Django sent

    def for_scope(self, scope) -> hooks.QuickPost | None:
        """The hook that wants this POST (a cheap look at method and path), if any."""
        if scope["method"] != "POST":
            return None
        return next((quick for quick in self.quick if quick.wants(scope)), None)

    async def answer(self, quick: hooks.QuickPost, scope, body: bytes, send: Send) -> bool:
        """Let the hook do the request's work and send the answer kept for its key: True once answered. False:
        Django answers (the hook wrote nothing); ``scope`` then carries the key for ``recording`` if the hook
        named one."""
        try:
            outcome = await quick.answer(scope, body, self.answers.get)
        except Exception as error:  # nothing was written, or the write's outcome is unknown: Django answers,
            # and its own path finds an entry already made (a second ask answers with the existing entry)
            logger.warning("quick POST %s left to Django: %r", scope["path"], error)
            return False
        if outcome is None:
            return False
        key, start = outcome
        if start is None:  # no answer kept yet: Django's, which the view may mark to be kept
            scope[SCOPE_KEY] = key
            return False
        await send(start)
        await send({"type": "http.response.body", "body": b""})
        return True

    def recording(self, quick: hooks.QuickPost, scope, send: Send) -> Send:
        """``send`` for Django's answer, keeping it under the scope's key when the view marked it common."""

        async def send_and_keep(message: dict) -> None:
            if message["type"] == "http.response.start" and scope.get(SCOPE_COMMON) and SCOPE_KEY in scope:
                self._keep(quick, scope[SCOPE_KEY], message)
            elif message["type"] == "http.response.body" and (message.get("body") or message.get("more_body")):
                self.answers.pop(scope.get(SCOPE_KEY), None)  # an answer with a body is never replayed
            await send(message)

        return send_and_keep

    def _keep(self, quick: hooks.QuickPost, key: object, start: dict) -> None:
        headers = list(start.get("headers", ()))
        cookies = {value.split(b"=", 1)[0].strip().decode("latin-1")
                   for name, value in headers if name.lower() == b"set-cookie"}
        if start.get("status") not in (302, 303) or not cookies <= quick.cookies_allowed:
            return
        if len(self.answers) >= _ANSWERS_MAX:
            self.answers.clear()
        self.answers[key] = {"type": "http.response.start", "status": start["status"], "headers": headers}
