"""Log filters for Django's request loggers.

Django logs a PermissionDenied with the exception attached, so every 403 (a student opening a staff page,
a crawler poking at /manage/) put a full traceback in the log, burying the tracebacks of real errors. A 403
is an expected answer, not a fault: it becomes one line saying who was refused what and why. 5xx records
are left alone, tracebacks included.
"""

from __future__ import annotations

import logging


def _one_line(text: str) -> str:
    """Control characters escaped (a path may carry %0A): one request, one log line."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


class ForbiddenInOneLine(logging.Filter):
    """Rewrite the 403 records of ``django.request`` and ``django.security.csrf`` as
    ``Forbidden: METHOD PATH 403 (reason)`` without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Configuring logging twice (tests, a management command) leaves two of these filters on a logger.
        if getattr(record, "status_code", None) != 403 or getattr(record, "one_line", False):
            return True
        record.one_line = True
        request = getattr(record, "request", None)
        exception = record.exc_info[1] if record.exc_info else None
        if exception is not None:
            reason = str(exception) or str(exception.__cause__ or "") or "permission denied"
        elif isinstance(record.args, tuple) and len(record.args) == 2:  # CSRF: "Forbidden (%s): %s", reason, path
            reason = str(record.args[0])
        else:
            reason = record.getMessage()
        method = getattr(request, "method", "-") or "-"
        path = getattr(request, "path", "-") or "-"
        record.msg = "Forbidden: %s %s 403 (%s)"
        record.args = (_one_line(method), _one_line(path), _one_line(reason))
        record.exc_info = None
        record.exc_text = None
        return True
