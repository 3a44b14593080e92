"""What the outbox sends about accounts, read in the tests: the sender runs for real, into a list."""

from __future__ import annotations

import re
from email.message import EmailMessage

from events.notifications import mailer


class Collected(mailer.Transport):
    def __init__(self) -> None:
        super().__init__({})
        self.messages: list[EmailMessage] = []

    async def send(self, email: EmailMessage, outbox_id: int) -> None:
        self.messages.append(email)


async def sent() -> list[EmailMessage]:
    """Deliver every due message; returns them."""
    transport = Collected()
    await mailer.send_all_due(transport)
    return transport.messages


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def link_in(message: EmailMessage, path: str) -> str:
    """The site path of the link to ``path`` in the message (e.g. /account/verify/<token>/)."""
    found = re.search(rf"https?://[^/\s]+({re.escape(path)}[^\s]+/)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


async def link_sent_to(email: str, path: str) -> str:
    messages = [message for message in await sent() if email in message["To"]]
    assert messages, f"no e-mail to {email}"
    return link_in(messages[-1], path)
