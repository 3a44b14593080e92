"""The 429 page of a request refused by a full thread gate (too many password hashes waiting)."""

from __future__ import annotations

from functools import wraps

from django.shortcuts import render

from hyperion.threadgate import GateFull


def refused_when_hashing_is_busy(view):
    """A view that hashes a password answers 429 with Retry-After when the hashing line is full. The gate
    refuses before the hash, so nothing the request would have written is written."""

    @wraps(view)
    async def wrapper(request, *args, **kwargs):
        try:
            return await view(request, *args, **kwargs)
        except GateFull as refusal:
            response = render(request, "errors/429.html", {"retry_after": refusal.retry_after}, status=429)
            response["Retry-After"] = str(refusal.retry_after)
            return response

    return wrapper
