"""Error answers are as thread-free as pages (hyperion/handler.py): a server handing 404s and 403s to a
scanner keeps the threads it had, and the pages keep their content, status and headers."""

import asyncio

import httpx
from django.conf import settings

from events.accounts import auth
from hyperion import db
from tests import factories, support

SECURITY_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy",
                    "permissions-policy")


async def test_hundreds_of_404_403_and_400_answers_start_no_thread(tmp_path):
    student_id = await factories.user(email="bob@etu.test", display_name="Bob")
    async with db.write_session() as session:
        token = await auth.session_create(session, user_id=student_id)
    student = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={token}", "Accept-Language": "en"}
    # One pooled connection: on SQLite each connection has its own thread (aiosqlite), opened by the warm-up.
    env = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "SERVER_MAX_IN_FLIGHT": "4"}
    with support.uvicorn_server(tmp_path, env=env) as server:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30) as client:

            async def not_found(number: int) -> httpx.Response:
                return await client.get(f"/scan/{number}/wp-login.php", headers={"Accept-Language": "en"})

            async def forbidden(number: int) -> httpx.Response:  # a student in the management area
                return await client.get(f"/manage/events/{number}/", headers=student)

            async def bad_request(number: int) -> httpx.Response:  # more form fields than Django reads
                fields = "&".join(f"f{field}=x" for field in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
                secret = "a" * 32  # past the CSRF cookie check, which comes before the form is read
                return await client.post(f"/account/login/?n={number}", content=fields.encode(), headers={
                    "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": secret,
                    "Cookie": f"{settings.CSRF_COOKIE_NAME}={secret}"})

            warm_up = await asyncio.gather(not_found(0), forbidden(0), bad_request(0))
            assert [response.status_code for response in warm_up] == [404, 403, 400]
            before = server.threads()
            peak = before
            stop = asyncio.Event()

            async def sample_threads() -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, server.threads())
                    await asyncio.sleep(0.005)  # samples the thread count while the requests run, waits for nothing

            sampler = asyncio.create_task(sample_threads())
            answers = await asyncio.gather(*(not_found(number) for number in range(1, 201)),
                                           *(forbidden(number) for number in range(1, 201)),
                                           *(bad_request(number) for number in range(1, 21)))
            stop.set()
            await sampler
            after = server.threads()
        log = server.log()

    statuses = [response.status_code for response in answers]
    assert statuses == [404] * 200 + [403] * 200 + [400] * 20
    assert peak == before and after == before, f"threads: {before} before, {peak} at the peak, {after} after"
    page_404, page_403, page_400 = answers[0], answers[200], answers[400]
    assert "Page not found" in page_404.text and "Back to upcoming events" in page_404.text
    assert "Access denied" in page_403.text and "Bob" in page_403.text  # in the site's layout, logged in
    assert "<html" in page_400.text
    for page in (page_404, page_403, page_400):
        for header in SECURITY_HEADERS:
            assert header in page.headers, (page.status_code, header)
        assert page.headers["x-frame-options"] == "DENY"
    # Logged as before, one line each: Django's "Not Found", and our one-line 403 without a traceback.
    assert "Not Found: /scan/200/wp-login.php" in log
    assert "Forbidden: GET /manage/events/200/ 403" in log
    # Only the 400s have tracebacks: Django logs a suspicious request with its (chained) traceback on
    # django.security, as it did before.
    suspicious = log.count("django.core.exceptions.TooManyFieldsSent: ")
    assert suspicious == 21 and log.count("Traceback") == 2 * suspicious
