"""The real server: uvicorn + the ASGI wrapper + Django, as production runs it."""

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from sqlalchemy import text

from events.accounts import auth
from events.models import utcnow
from hyperion import db
from tests import factories, support


async def _seed_events(count: int = 25) -> None:
    association_id = await factories.association(slug="bde", name="BDE")
    for number in range(count):
        await factories.event(association_id=association_id, slug=f"event-{number}",
                                   title=f"Soirée numéro {number}",
                                   starts_at=utcnow() + timedelta(days=1, hours=number))


async def _server_connections(application_name: str) -> int:
    async with db.read_session() as session:
        return (await session.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                 "AND datname = current_database()"),
            {"name": application_name},
        )).scalar_one()


@pytest.mark.postgres_only
async def test_server_keeps_few_threads_under_hundreds_of_concurrent_requests(tmp_path):
    await _seed_events()
    user_id = await factories.user(email="bob@etu.test", display_name="Bob")
    async with db.write_session() as session:
        token = await auth.session_create(session, user_id=user_id)
    with support.uvicorn_server(tmp_path) as server:
        peak_threads = server.threads()
        stop = asyncio.Event()

        async def sample_threads() -> None:
            nonlocal peak_threads
            while not stop.is_set():
                peak_threads = max(peak_threads, server.threads())
                await asyncio.sleep(0.005)  # samples the thread count while the requests run, waits for nothing

        limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30) as client:
            sampler = asyncio.create_task(sample_threads())

            async def fetch(number: int) -> httpx.Response:
                headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={token}"} if number % 2 else None
                return await client.get("/", headers=headers)

            responses = await asyncio.gather(*(fetch(number) for number in range(400)))
            stop.set()
            await sampler
        statuses = {response.status_code for response in responses}
        assert statuses == {200}
        assert all("Soirée numéro 0" in response.text for response in responses)
        assert "Bob" in responses[1].text and "Bob" not in responses[0].text
    # uvicorn's main thread plus asyncpg's and the loop's helpers: no thread per request.
    assert peak_threads < 10, f"{peak_threads} threads for 400 concurrent requests"


async def test_lifespan_creates_and_disposes_the_engine_cleanly(tmp_path, backend, pytestconfig):
    # Through PgBouncer, PostgreSQL's connections are PgBouncer's own pool, kept by design: the
    # connection counts below are then not the app's.
    direct_postgres = backend == "postgres" and not pytestconfig.getoption("--pgbouncer")
    await _seed_events(3)
    name = "hyperion-lifespan-test"
    with support.uvicorn_server(tmp_path, env={"DB_APPLICATION_NAME": name}) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            responses = await asyncio.gather(*(client.get("/") for _ in range(20)))
        assert {response.status_code for response in responses} == {200}
        if direct_postgres:
            assert await _server_connections(name) > 0  # the pool holds connections while serving
        exit_code = server.stop()
    log = server.log()
    assert exit_code in (0, -signal.SIGTERM), log  # uvicorn re-raises the signal it stopped on
    assert "Application startup complete" in log and "Application shutdown complete" in log
    for trouble in ("Traceback", "Event loop is closed", "was never awaited", "ResourceWarning",
                    "garbage collector is trying to clean up", "ERROR"):
        assert trouble not in log, log
    if direct_postgres:
        assert await _server_connections(name) == 0  # nothing leaked at shutdown


def test_django_orm_is_unusable_so_no_query_can_slip_through_it():
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connection

    assert settings.DATABASES == {} or set(settings.DATABASES) == {"default"}
    with pytest.raises(ImproperlyConfigured):
        connection.cursor()


def test_no_installed_app_needs_the_orm():
    from django.apps import apps

    for forbidden in ("django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                      "django.contrib.sessions"):
        assert not apps.is_installed(forbidden)
    assert all(not list(config.get_models()) for config in apps.get_app_configs())


def test_no_sync_receiver_of_request_signals_would_cost_a_thread():
    # In a fresh process as uvicorn imports the site: Django's test client reconnects django.db's receiver
    # after each request it makes, so this process's signals say nothing once another test has used it.
    probe = ("import hyperion.asgi\n"
             "from django.core import signals\n"
             "entries = [*signals.request_started.receivers, *signals.request_finished.receivers]\n"
             "for entry in entries:\n"
             "    receiver = entry[1]()\n"
             "    if receiver: print(f'{receiver.__module__}.{receiver.__qualname__}')\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True,  # noqa: S603 - our own probe
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "hyperion.settings"})
    names = set(result.stdout.split())
    assert "django.core.handlers.base.reset_urlconf" in names  # the probe did see the receivers
    assert not {name for name in names if name.startswith("django.db")}, names


async def test_home_page_lists_published_events(async_client):
    await _seed_events(3)
    response = await async_client.get("/")
    assert response.status_code == 200
    assert "Soirée numéro 0" in response.text and "Soirée numéro 2" in response.text


async def test_unknown_page_is_a_404_in_the_site_layout(async_client):
    response = await async_client.get("/no-such-page/", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert "Hyperion" in response.text and "Page not found" in response.text


async def test_database_down_gives_a_503_try_again_page(tmp_path):
    with support.uvicorn_server(
        tmp_path, env={"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"}
    ) as server:
        async with httpx.AsyncClient(timeout=20) as client:
            response = await client.get(f"{server.base_url}/", headers={"Accept-Language": "en"})
            alive = await client.get(f"{server.base_url}/healthz")
            ready = await client.get(f"{server.base_url}/healthz?db=1")
        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()
        assert "Try again" in response.text and "Traceback" not in response.text
        # A load balancer's checks: the process is alive, but not ready to serve pages.
        assert alive.status_code == 200 and alive.text == "ok\n"
        assert ready.status_code == 503 and ready.headers["Retry-After"].isdigit()


async def test_health_checks_answer_ok_with_the_site_headers(async_client):
    for path in ("/healthz", "/healthz?db=1"):
        response = await async_client.get(path)
        assert response.status_code == 200 and response.content == b"ok\n"
        assert response["Cache-Control"] == "no-store" and response["X-Frame-Options"] == "DENY"


async def test_oversized_bodies_are_refused_before_django_reads_them(tmp_path):
    with support.uvicorn_server(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            declared = await client.post("/account/login/", content=b"x" * (3 * 1024 * 1024),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert declared.status_code == 413

            async def chunks():
                for _ in range(40):
                    yield b"y" * (128 * 1024)  # 5 MiB with no Content-Length (chunked)

            chunked = await client.post("/account/login/", content=chunks(),
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert chunked.status_code == 413
            assert (await client.get("/")).status_code == 200  # the server is fine afterwards
        assert "Traceback" not in server.log()


def test_outages_are_told_apart_from_bugs():
    import asyncpg
    from sqlalchemy import exc as sa_exc

    from hyperion.errors import is_database_unavailable

    class Original(Exception):
        sqlstate = "57P01"  # admin shutdown: a restart

    assert is_database_unavailable(asyncpg.InterfaceError("connection is closed"))
    assert is_database_unavailable(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert is_database_unavailable(ConnectionRefusedError(111, "refused"))
    assert is_database_unavailable(sa_exc.DBAPIError("SELECT 1", {}, Original("terminating")))
    assert is_database_unavailable(sa_exc.DBAPIError("SELECT 1", {}, Exception(), connection_invalidated=True))

    class TooManyClients(Exception):
        sqlstate = "53300"

    assert is_database_unavailable(sa_exc.DBAPIError("connect", {}, TooManyClients("too many clients")))
    assert not is_database_unavailable(sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_database_unavailable(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert not is_database_unavailable(ValueError("a bug"))
