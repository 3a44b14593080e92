"""Browser tests: Debian's Chromium driven by Playwright (async API) against the real site under uvicorn.

One uvicorn server per test module (it reads the same scratch database as the tests, so the data a test
seeds is what the browser sees), one Chromium per module, a fresh browser context (cookies, locale,
viewport) per test. Playwright's own browser download cannot work here: the tests use /usr/bin/chromium
and fail, never skip, when it is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests import support

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
TIMEOUT_MS = 15_000  # every wait (navigation, locator, expect) is bounded by this
ARTIFACTS = support.ROOT / "test-artifacts"

expect.set_options(timeout=TIMEOUT_MS)

NewPage = Callable[..., Awaitable[Page]]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell at teardown whether it failed."""
    report = yield
    setattr(item, f"_browser_report_{report.when}", report)
    return report


@pytest.fixture(scope="session", autouse=True)
def _compiled_messages():
    """Compile the translation catalogs (the .mo files are not in git) before any server starts."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "compilemessages", "--ignore=.venv"],
        cwd=support.ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"manage.py compilemessages failed:\n{result.stdout}\n{result.stderr}", pytrace=False)


@pytest.fixture(scope="module")
def server(_site_database, _compiled_messages, tmp_path_factory):
    """The real site under uvicorn for this module's tests, on this run's scratch database."""
    with support.uvicorn_server(tmp_path_factory.mktemp("browser-server"),
                                env={"DATABASE_URL": _site_database}) as running:
        yield running


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; a failure (not a skip) when it is missing: the test command installs it."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium "
                    "(apt-get install chromium); Playwright's own browser download does not work here.",
                    pytrace=False)
    return CHROMIUM


@pytest_asyncio.fixture(scope="module")
async def browser(chromium) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True, timeout=TIMEOUT_MS * 2)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture
async def new_page(browser, server, request) -> AsyncIterator[NewPage]:
    """``await new_page(locale="en-US", viewport=...)``: a page in a fresh context aimed at the server.

    Every context is closed at the end of the test; when the test failed, each open page is saved as a
    screenshot under test-artifacts/failures/ and the server's log is printed.
    """
    contexts: list[BrowserContext] = []

    async def make(*, locale: str = "en-US", **options) -> Page:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = await browser.new_context(base_url=server.base_url, locale=locale,
                                            timezone_id="Europe/Paris", **options)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        return await context.new_page()

    try:
        yield make
    finally:
        report = getattr(request.node, "_browser_report_call", None)
        failed = report is not None and report.failed
        if failed:
            folder = ARTIFACTS / "failures"
            folder.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            for context_index, context in enumerate(contexts):
                for page_index, page in enumerate(context.pages):
                    try:
                        path = folder / f"{name}-{context_index}-{page_index}.png"
                        await page.screenshot(path=path, full_page=True, timeout=5_000)
                        print(f"screenshot of {page.url}: {path}")
                    except Exception as error:  # noqa: BLE001 - best effort, the test already failed
                        print(f"no screenshot of {page.url}: {error}")
            print(f"--- uvicorn log (last 4,000 characters) ---\n{server.log()[-4000:]}")
        for context in contexts:
            await context.close()
