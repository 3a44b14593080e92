from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Hyperion Events"

    def ready(self) -> None:
        from hyperion.handler import disconnect_orm_request_signals

        disconnect_orm_request_signals()
        import hyperion.checks  # noqa: F401 - registers the deploy checks
        from events.accounts.session_cache import CHANNEL, session_cache
        from events.live.broadcast import broadcaster

        # Other processes' account changes (log-outs, roles, passwords) reach this one's memory of sessions.
        broadcaster.listen(CHANNEL, session_cache.on_notify)
