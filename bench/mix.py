"""The request mixes of the load, in one place: the wrk Lua scripts read them from the per-run data file that
bench.run writes, and the open-loop client uses them directly."""

from __future__ import annotations

import random
from urllib.parse import quote

# (name, weight in %): what a busy evening looks like on the site. Public pages are sent anonymously, as most
# visitors arrive (ours answers them from its stored pages).
MIX = [
    ("home", 30),          # GET /
    ("filtered", 15),      # GET /?category=sport&has_seats=on
    ("detail", 25),        # GET /events/<random slug>/
    ("calendar", 5),       # GET /calendar/
    ("my_events", 10),     # GET /me/events/ with a real session cookie
    ("feed", 5),           # GET /feeds/me/<token>.ics
    ("register", 10),      # POST /events/<random slug>/register/ with a session and a CSRF pair
]
# The same evening seen by logged-in students only (issue 18): every request carries a student's session
# cookie and the CSRF cookie the browser keeps (its secret, sent back as is: a browser does not get a new
# one per request), so no stored page can answer. The feed is fetched by a calendar app: its token only.
LOGGEDIN_MIX = [
    ("home", 25),          # GET / (session + csrftoken cookies)
    ("filtered", 10),      # GET /?category=sport&has_seats=on
    ("detail", 25),        # GET /events/<random slug>/
    ("calendar", 5),       # GET /calendar/
    ("my_events", 10),     # GET /me/events/
    ("feed", 5),           # GET /feeds/me/<token>.ics (no cookie)
    ("register", 10),      # POST /events/<random open event>/register/ with the CSRF pair
    ("leave", 10),         # POST /events/<random slug>/leave/ with the CSRF pair (mostly "not registered")
]
MIXES = {"anon": MIX, "loggedin": LOGGEDIN_MIX}
FILTERED_PATH = "/?category=sport&has_seats=on"


def _student(data: dict, rng: random.Random) -> tuple[dict[str, str], str]:
    """(cookie header, masked CSRF token for a form) of a random logged-in student."""
    secret, masked = rng.choice(data["csrf"])
    return {"Cookie": f"csrftoken={secret}; hyperion_session={rng.choice(data['sessions'])}"}, masked


def _post(path: str, cookie: dict[str, str], masked: str) -> tuple[str, str, dict[str, str], bytes]:
    return ("POST", path, {**cookie, "Content-Type": "application/x-www-form-urlencoded"},
            f"csrfmiddlewaretoken={quote(masked)}".encode())


def request_for(kind: str, data: dict, rng: random.Random,
                loggedin: bool = False) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path, headers, body) of one request of ``kind``; ``loggedin``: with a student's cookies."""
    cookie, masked = _student(data, rng)
    page_cookie = cookie if loggedin else {}
    if kind == "home":
        return "GET", "/", page_cookie, b""
    if kind == "filtered":
        return "GET", FILTERED_PATH, page_cookie, b""
    if kind == "detail":
        return "GET", f"/events/{rng.choice(data['slugs'])}/", page_cookie, b""
    if kind == "calendar":
        return "GET", "/calendar/", page_cookie, b""
    if kind == "my_events":
        return "GET", "/me/events/", cookie if loggedin else {"Cookie": cookie["Cookie"].split("; ")[1]}, b""
    if kind == "feed":
        return "GET", f"/feeds/me/{rng.choice(data['feeds'])}.ics", {}, b""
    if kind == "register":
        # Logged-in students register for events still open (first come, seats free): a real registration,
        # its outbox row and its NOTIFY. The visitors' mix keeps its random events (many already past).
        slugs = (data.get("open_slugs") or data["slugs"]) if loggedin else data["slugs"]
        return _post(f"/events/{rng.choice(slugs)}/register/", cookie, masked)
    if kind == "leave":
        return _post(f"/events/{rng.choice(data['slugs'])}/leave/", cookie, masked)
    raise ValueError(kind)


def pick(rng: random.Random, name: str = "anon") -> str:
    entries = MIXES[name]
    roll = rng.uniform(0, 100)
    for kind, weight in entries:
        roll -= weight
        if roll < 0:
            return kind
    return entries[-1][0]
