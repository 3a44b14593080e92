"""The plumbing below the app (hyperion/) and what the app plugs into it (hyperion/hooks.py): hyperion never
imports the app, the app's lifespan pieces start and stop with the server, and a database outage in a view
is the 503 page."""

import ast
import gc
import signal
from pathlib import Path

from django.http import HttpResponse
from django.test import AsyncClient
from django.urls import include, path

from hyperion.app import HyperionApp

HYPERION = Path(__file__).resolve().parents[2] / "hyperion"


def _imported_modules(source: str) -> set[str]:
    """Every module a file imports, at its top or inside a function, or names to importlib."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            modules.add(str(node.args[0].value))
    return modules


# The tripwires' import-linter contract ("hyperion must not import events") says the same: this test may go
# once that contract runs with the suite.
def test_hyperion_imports_no_module_of_the_app():
    files = sorted(HYPERION.glob("*.py"))
    assert len(files) > 10
    offenders = {
        file.name: sorted(module for module in _imported_modules(file.read_text()) if module.split(".")[0] == "events")
        for file in files
    }
    assert {name: modules for name, modules in offenders.items() if modules} == {}


def test_the_import_walk_sees_imports_inside_functions():
    source = "def f():\n    from events.live import broadcast\n    import events.models\n"
    assert _imported_modules(source) == {"events.live", "events.models"}


CALLED: list[str] = []


async def _outage(request):
    CALLED.append("outage")
    raise ConnectionRefusedError(111, "Connection refused")


async def _bug(request):
    raise ValueError("a bug, not an outage")


async def _form(request):
    CALLED.append("form")
    return HttpResponse("saved")


# The site's own routes too: the error pages link to them.
urlpatterns = [path("outage/", _outage, name="outage"), path("bug/", _bug, name="bug"),
               path("form/", _form, name="form"), path("", include("hyperion.urls"))]


async def test_a_database_outage_in_a_view_is_the_try_again_page(settings):
    settings.ROOT_URLCONF = __name__
    CALLED.clear()
    response = await AsyncClient().get("/outage/", headers={"Accept-Language": "en"})
    assert CALLED == ["outage"]
    assert response.status_code == 503 and response["Retry-After"].isdigit()
    assert "Try again" in response.text and "Traceback" not in response.text
    assert response["X-Frame-Options"] == "DENY"  # still wrapped by the security headers


async def test_a_bug_in_a_view_stays_a_server_error(settings):
    settings.ROOT_URLCONF = __name__
    response = await AsyncClient(raise_request_exception=False).get("/bug/")
    assert response.status_code == 500


async def test_a_forged_post_is_refused_before_the_view_runs(settings):
    settings.ROOT_URLCONF = __name__
    CALLED.clear()
    forged = await AsyncClient(enforce_csrf_checks=True).post("/form/", {"name": "x"})
    assert forged.status_code == 403 and CALLED == []


class _Hook:
    def __init__(self, name: str) -> None:
        self.name = name

    def start(self) -> None:
        LIFESPAN.append(f"{self.name} started")

    async def stop(self) -> None:
        LIFESPAN.append(f"{self.name} stopped")

    def release_streams(self) -> None:
        LIFESPAN.append(f"{self.name} released")


LIFESPAN: list[str] = []
LISTENER, SENDER = _Hook("listener"), _Hook("sender")


async def test_the_apps_lifespan_hooks_start_with_the_server_and_stop_in_reverse_order(settings):
    settings.LIFESPAN_HOOKS = [f"{__name__}.LISTENER", f"{__name__}.SENDER"]
    LIFESPAN.clear()
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        await HyperionApp()({"type": "lifespan"}, receive, send)
    finally:
        gc.unfreeze()  # startup freezes what is loaded; the suite's later tests count their garbage
        for number, handler in handlers.items():  # startup chained its own in front (in the main thread)
            signal.signal(number, handler)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert LIFESPAN == ["listener started", "sender started", "sender stopped", "listener stopped"]
