"""The plumbing's own Django application: what the server needs set up once Django is, whatever site runs on
it (the app, events/, registers its own hooks in its AppConfig and in settings.py's hook lists)."""

from django.apps import AppConfig


class HyperionConfig(AppConfig):
    name = "hyperion"
    verbose_name = "Hyperion plumbing"

    def ready(self) -> None:
        from hyperion.handler import disconnect_orm_request_signals

        disconnect_orm_request_signals()  # no ORM: Django's per-request connection signals have nothing to do
        import hyperion.checks  # noqa: F401 - registers the deploy checks
