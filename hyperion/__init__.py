"""Hyperion Events: the Django project (settings, URLs, ASGI entry point, database layer)."""
