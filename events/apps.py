from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Hyperion Events"

    def ready(self) -> None:
        from events.accounts.session_cache import CHANNEL, session_cache
        from events.live.broadcast import broadcaster

        # Other processes' account changes (log-outs, roles, passwords) reach this one's memory of sessions.
        broadcaster.listen(CHANNEL, session_cache.on_notify)
