"""The request mix of the load, in one place: the wrk Lua scripts read it from the per-run data file that
bench.run writes, and the open-loop client uses it directly."""

from __future__ import annotations

import random
from urllib.parse import quote

# (name, weight in %): what a busy evening looks like on the site.
MIX = [
    ("home", 30),          # GET /
    ("filtered", 15),      # GET /?category=sport&has_seats=on
    ("detail", 25),        # GET /events/<random slug>/
    ("calendar", 5),       # GET /calendar/
    ("my_events", 10),     # GET /me/events/ with a real session cookie
    ("feed", 5),           # GET /feeds/me/<token>.ics
    ("register", 10),      # POST /events/<random slug>/register/ with a session and a CSRF pair
]
FILTERED_PATH = "/?category=sport&has_seats=on"


def request_for(kind: str, data: dict, rng: random.Random) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path, headers, body) of one request of ``kind``."""
    if kind == "home":
        return "GET", "/", {}, b""
    if kind == "filtered":
        return "GET", FILTERED_PATH, {}, b""
    if kind == "detail":
        return "GET", f"/events/{rng.choice(data['slugs'])}/", {}, b""
    if kind == "calendar":
        return "GET", "/calendar/", {}, b""
    if kind == "my_events":
        return "GET", "/me/events/", {"Cookie": f"hyperion_session={rng.choice(data['sessions'])}"}, b""
    if kind == "feed":
        return "GET", f"/feeds/me/{rng.choice(data['feeds'])}.ics", {}, b""
    if kind == "register":
        secret, masked = rng.choice(data["csrf"])
        session = rng.choice(data["sessions"])
        return ("POST", f"/events/{rng.choice(data['slugs'])}/register/",
                {"Cookie": f"csrftoken={secret}; hyperion_session={session}",
                 "Content-Type": "application/x-www-form-urlencoded"},
                f"csrfmiddlewaretoken={quote(masked)}".encode())
    raise ValueError(kind)


def pick(rng: random.Random) -> str:
    roll = rng.uniform(0, 100)
    for name, weight in MIX:
        roll -= weight
        if roll < 0:
            return name
    return MIX[-1][0]
