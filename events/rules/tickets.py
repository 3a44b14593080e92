"""Tickets: what a confirmed student shows at the door, and what the door reads back.

A ticket's code names its event and registration and carries an HMAC of both under the site's SECRET_KEY
(Django's ``signing.Signer``, with a salt of its own): nobody can make one for a registration they do not
hold, or turn one event's ticket into another's. It is the same code every time for a registration, so the
e-mail's and the page's are one ticket; what makes it single-use is the check-in, which records the first
scan (``events.staff.people.ticket_check_in``). The QR code is made by segno: SVG inline on the ticket page
(no image request), PNG attached to the confirmation e-mail.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import segno
from django.core import signing

from events.models import EventStatus, RegistrationStatus
from events.rules import visibility

_SALT = "hyperion.ticket"
CODE_MAX = 200  # longer than any code signed here (the door's form refuses more)


def has_ticket(*, status: RegistrationStatus, event_status: EventStatus, event_ends_at: datetime,
               now: datetime) -> bool:
    """A registration holds a ticket while it is confirmed and its event goes ahead and is not over: My events
    links to it, and its page opens, exactly then."""
    return status == RegistrationStatus.CONFIRMED and visibility.goes_ahead(event_status) and event_ends_at >= now


@dataclass(frozen=True, slots=True)
class TicketId:
    event_id: int
    registration_id: int


def ticket_code(*, event_id: int, registration_id: int) -> str:
    return str(signing.Signer(salt=_SALT).sign(f"{event_id}-{registration_id}"))


def ticket_read(code: str) -> TicketId | None:
    """The ticket a scanned or typed code names; None for anything that is not a ticket of this site."""
    code = (code or "").strip()
    if not code or len(code) > CODE_MAX:
        return None
    try:
        value = signing.Signer(salt=_SALT).unsign(code)
    except signing.BadSignature:
        return None
    event_id, _, registration_id = value.partition("-")
    if not (event_id.isdigit() and registration_id.isdigit()):
        return None
    return TicketId(int(event_id), int(registration_id))


def _qr(code: str) -> segno.QRCode:
    return segno.make(code, error="m", micro=False)


def ticket_svg(code: str) -> str:
    """The QR code as an inline ``<svg>`` (dark modules on a white quiet zone, whatever the page's colours)."""
    return _qr(code).svg_inline(scale=6, border=4, dark="#000", light="#fff", omitsize=True)


def ticket_png(code: str) -> bytes:
    out = io.BytesIO()
    _qr(code).save(out, kind="png", scale=8, border=4)
    return out.getvalue()
