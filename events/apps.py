from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Hyperion Events"

    def ready(self) -> None:
        from hyperion.handler import disconnect_orm_request_signals

        disconnect_orm_request_signals()
        import hyperion.checks  # noqa: F401 - registers the deploy checks
