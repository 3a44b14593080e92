"""The typed domain errors: a rule said no. Services raise them, views turn ``message`` (translated) into a
message on the page and the right status; commands print it on one line. Errors that belong to one topic
(a full event, a throttled log-in) live beside that topic's services and derive from ``DomainError``."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """A rule said no. ``message`` is for the person who asked (translated)."""

    message = _("This action is not possible.")

    def __init__(self, message: str | None = None) -> None:
        super().__init__(str(message or self.message))
        if message is not None:
            self.message = message


class EventNotFound(DomainError):
    message = _("This event does not exist.")


class Forbidden(DomainError):
    message = _("You are not allowed to do this.")


class NotFound(DomainError):
    message = _("Not found.")


class SlugTaken(DomainError):
    message = _("This address is already used by another association.")
