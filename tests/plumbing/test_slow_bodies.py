"""Request bodies against the real server (hyperion/app.py): a body is read whole before the request waits
for its admission turn, within SERVER_BODY_TIMEOUT. Posts whose body never comes hold no turn (pages and
/healthz answer while more of them are open than SERVER_MAX_IN_FLIGHT), get a 408 past the timeout, and an
ordinary form post still logs in."""

from __future__ import annotations

import asyncio
import time

import httpx
from django.conf import settings
from django.contrib.auth.hashers import make_password

from tests import factories, support

CSRF_SECRET = "a" * 32  # a CSRF secret as the cookie holds it; the form may carry it unmasked
SLOW_POST = (b"POST /account/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n")


def _port(server: support.RunningServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


async def _slow_posts(port: int, count: int, *, sent: bytes = b"") -> list[tuple[asyncio.StreamReader,
                                                                                 asyncio.StreamWriter]]:
    """``count`` log-in posts that declare 100 bytes of body and send only ``sent`` of it."""
    posts = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(SLOW_POST + sent)
        await writer.drain()
        posts.append((reader, writer))
    return posts


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """Wait for the server to close the connection; what it sent before."""
    return await asyncio.wait_for(reader.read(), timeout=support.EVENT_WITHIN)


async def test_posts_whose_body_never_comes_hold_no_turn_pages_and_healthz_answer(tmp_path):
    """Twice as many bodiless posts as SERVER_MAX_IN_FLIGHT, all arrived in the application: a page Django
    renders (a cookie keeps it from the stored pages) and /healthz?db=1 answer 200 while they stay open."""
    in_flight = 2
    env = {"SERVER_MAX_IN_FLIGHT": str(in_flight), "SERVER_BODY_TIMEOUT": "300",
           "SERVER_QUEUE_TIMEOUT": "10"}  # were the posts holding the turns, the page would get a 503 after this
    with support.uvicorn_server(tmp_path, env=env, extra_args=["--log-level", "trace"]) as server:
        arrived = server.log().count("Started scope=")
        posts = await _slow_posts(_port(server), in_flight * 2)
        await support.until(lambda: server.log().count("Started scope=") >= arrived + in_flight * 2,
                            what="the posts reaching the application")
        cookies = {settings.CSRF_COOKIE_NAME: CSRF_SECRET}
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30, cookies=cookies) as client:
            home, health = await client.get("/"), await client.get("/healthz?db=1")
        still_open = sum(not reader.at_eof() for reader, _writer in posts)
        for _reader, writer in posts:
            writer.close()
        log = server.log()
    assert home.status_code == 200 and "<!doctype html>" in home.text.lower(), home.status_code
    assert health.status_code == 200 and health.text == "ok\n", (health.status_code, health.text)
    assert still_open == in_flight * 2
    assert "Traceback" not in log, log


async def test_a_body_that_does_not_arrive_in_time_gets_a_408_and_a_form_post_still_logs_in(tmp_path):
    """SERVER_BODY_TIMEOUT=1: a post that sends no body and one that sends half of it get a 408 (with the
    site's security headers) about a second after their headers, and the connection closed; a log-in form
    posted whole logs the student in."""
    timeout = 1.0
    await factories.user(email="bob@etu.test", display_name="Bob", password_hash=make_password("long-passphrase"))
    with support.uvicorn_server(tmp_path, env={"SERVER_BODY_TIMEOUT": str(timeout)}) as server:
        began = time.monotonic()
        posts = [*await _slow_posts(_port(server), 1),
                 *await _slow_posts(_port(server), 1, sent=b"email=" + b"x" * 44)]  # half the body
        answers = await asyncio.gather(*(_closed(reader) for reader, _writer in posts))
        waited = time.monotonic() - began
        for _reader, writer in posts:
            writer.close()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                     cookies={settings.CSRF_COOKIE_NAME: CSRF_SECRET}) as client:
            login = await client.post("/account/login/", data={
                "email": "bob@etu.test", "password": "long-passphrase", "csrfmiddlewaretoken": CSRF_SECRET})
            session = login.cookies.get(settings.SESSION_COOKIE_NAME)
            # Sent by hand: the session cookie is Secure, and this server speaks plain HTTP.
            home = await client.get("/", headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"})
        log = server.log()
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer
        assert b"x-content-type-options: nosniff" in head.lower() and b"connection: close" in head.lower(), head
        assert body.endswith(b"Request body not received in time."), answer
    assert waited >= timeout * 0.9, waited
    assert login.status_code == 302, (login.status_code, login.text[:500])
    assert session
    assert home.status_code == 200 and "Bob" in home.text
    assert "Traceback" not in log, log
