"""The outbox sender: claims due messages, renders them in the recipient's language, delivers them over
async SMTP (or to files / the console in development), and records the outcome.

Safe with several senders at once: a claim is one short transaction that selects due rows with
``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises the claim with ``BEGIN IMMEDIATE``) and marks
them ``sending`` with a lease. A sender that dies leaves its claims to expire; they are then retaken, so
nothing is lost, and only the message that was in flight at the crash can go out twice (with the same
Message-ID, which mail clients use to drop duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from django.conf import settings
from django.utils import translation
from django.utils.formats import date_format
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from events import localtime, outbox
from events.accounts import tokens
from events.feeds.queries import FeedEventRow
from events.models import (
    Association,
    Event,
    Follow,
    Membership,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    User,
    utcnow,
)
from events.notifications import approval_digest, changes
from events.notifications.messages import ACCOUNT_LINKS, NO_EVENT_KINDS, Claimed, build
from events.rules import lifecycle, restrictions, visibility
from events.rules.accounts import is_verified
from hyperion import db, hooks

logger = logging.getLogger("hyperion.mailer")

async def outbox_claim(session: AsyncSession, *, limit: int, now: datetime | None = None) -> list[int]:
    """Take up to ``limit`` due messages for this sender (one short transaction)."""
    now = now or utcnow()
    lease_expired = now - timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    async with session.begin():
        ids = list((await session.execute(
            select(OutboxMessage.id)
            .where(or_((OutboxMessage.status == OutboxStatus.PENDING) & (OutboxMessage.send_after <= now),
                       (OutboxMessage.status == OutboxStatus.SENDING) & (OutboxMessage.claimed_at < lease_expired)))
            .order_by(OutboxMessage.send_after, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )).scalars())
        if ids:
            await session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(
                status=OutboxStatus.SENDING, claimed_at=now, attempts=OutboxMessage.attempts + 1))
    return ids


async def _load(session: AsyncSession, ids: list[int]) -> list[Claimed]:
    registration = aliased(Registration)
    rows = await session.execute(
        select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.attempts, OutboxMessage.payload,
               OutboxMessage.recipient_id, User.email, User.display_name, User.language, User.email_opt_outs,
               User.is_active, User.anonymised_at, Event.id.label("event_id"), Event.slug, Event.title,
               Event.description, Event.location, Event.category, Event.starts_at, Event.ends_at, Event.all_day,
               Event.status.label("event_status"), Event.sequence, Event.updated_at, Event.decision_reason,
               Association.name.label("association_name"), registration.status.label("registration_status"),
               registration.id.label("registration_id"), User.email_verified_at, User.password_hash, User.last_login_at)
        .outerjoin(User, User.id == OutboxMessage.recipient_id)
        .outerjoin(Event, Event.id == OutboxMessage.event_id)
        .outerjoin(Association, Association.id == Event.association_id)
        .outerjoin(registration, (registration.event_id == OutboxMessage.event_id)
                   & (registration.user_id == OutboxMessage.recipient_id))
        .where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id))
    claimed = []
    for row in rows:
        event = None
        if row.event_id is not None:
            event = FeedEventRow(row.event_id, row.slug, row.title, row.description, row.location, row.category,
                                 row.starts_at, row.ends_at, row.all_day, row.event_status, row.sequence,
                                 row.updated_at)
        claimed.append(Claimed(
            id=row.id, kind=row.kind, attempts=row.attempts, payload=row.payload or {},
            recipient_id=row.recipient_id, email=row.email, display_name=row.display_name, language=row.language,
            opt_outs=list(row.email_opt_outs or []), active=bool(row.is_active) and row.anonymised_at is None,
            event=event, event_status=row.event_status, decision_reason=row.decision_reason or "",
            association_name=row.association_name, registration_status=row.registration_status,
            registration_id=row.registration_id, account=None if row.email is None else tokens.AccountState(
                row.recipient_id, row.email, row.email_verified_at, row.password_hash, row.last_login_at)))
    return claimed


def drop_reason(message: Claimed) -> str | None:
    """Why a due message should not go out any more (checked at send time), or None."""
    if message.email is None or not message.active:
        return "recipient gone or inactive"
    if outbox.KIND_PREFERENCE.get(message.kind) in message.opt_outs:
        return "recipient opted out"
    if message.kind == "event.reminder" and (
            message.event is None or not visibility.goes_ahead(message.event_status)
            or message.registration_status != RegistrationStatus.CONFIRMED):
        return "no longer confirmed for a published event"
    if message.kind == "event.message" and (
            message.registration_status is None
            or message.registration_status.value not in message.payload.get("statuses", ())):
        return "no longer in the group the organisers wrote to"
    if message.kind == "association.new_event" and (
            message.event is None or not visibility.goes_ahead(message.event_status)):
        return "no longer going ahead"
    if message.kind in ACCOUNT_LINKS and message.account is None:
        return "recipient gone or inactive"
    if message.kind == "account.verify" and message.account is not None \
            and is_verified(message.account.email_verified_at):
        return "address already confirmed"
    if message.kind not in NO_EVENT_KINDS and message.event is None:
        return "event deleted"
    return None


class Transport:
    """Where messages go: SMTP (aiosmtplib), files (.eml in a folder) or the console."""

    def __init__(self, config: dict) -> None:
        backend = config.get("EMAIL_BACKEND", "")
        self.kind = "smtp" if backend.endswith("smtp.EmailBackend") else (
            "file" if backend.endswith("filebased.EmailBackend") else "console")
        self.config = config
        path = Path(config.get("EMAIL_FILE_PATH") or settings.DATA_DIR / "mail")
        self.folder = path if path.is_absolute() else Path("/") / path

    async def send(self, email: EmailMessage, outbox_id: int) -> None:
        if self.kind == "smtp":
            config = self.config
            await aiosmtplib.send(
                email, hostname=config.get("EMAIL_HOST") or "localhost", port=config.get("EMAIL_PORT") or 25,
                username=config.get("EMAIL_HOST_USER") or None, password=config.get("EMAIL_HOST_PASSWORD") or None,
                use_tls=bool(config.get("EMAIL_USE_SSL")), start_tls=True if config.get("EMAIL_USE_TLS") else None,
                timeout=config.get("EMAIL_TIMEOUT") or 30)
        elif self.kind == "file":
            # A few kB on a local disk, from the sender (never a web request): a thread keeps the loop free.
            await asyncio.to_thread(self._write, email, outbox_id)
        else:
            sys.stdout.write(email.as_string() + "\n" + "-" * 72 + "\n")
            sys.stdout.flush()

    def _write(self, email: EmailMessage, outbox_id: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{utcnow():%Y%m%d-%H%M%S}-{outbox_id:08d}.eml").write_bytes(email.as_bytes())


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.dropped


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), 3600))


async def _finish(outbox_id: int, **values) -> None:
    async with db.write_session() as session, session.begin():
        await session.execute(update(OutboxMessage).where(
            OutboxMessage.id == outbox_id, OutboxMessage.status == OutboxStatus.SENDING).values(**values))


async def _approval_queue_titles() -> list[str]:
    async with db.read_session() as session:
        rows = await session.execute(select(Event.title, Association.name)
                                     .join(Association, Association.id == Event.association_id)
                                     .where(lifecycle.awaiting_review())
                                     .order_by(Event.submitted_at.nulls_first(), Event.id).limit(50))
        return [f"{title} ({name})" for title, name in rows]


async def _followed_news(message: Claimed) -> list[str]:
    """A weekly digest's lines: the events published since the last digest by the associations the recipient
    follows, still to come and open to the recipient (``restrictions.admits``: an event kept to members, promos
    or a list, hidden or not, is listed to those it admits only)."""
    since = datetime.fromisoformat(message.payload.get("since") or utcnow().isoformat())
    async with db.read_session() as session:
        recipient = (await session.execute(select(User.promo, User.email).where(
            User.id == message.recipient_id))).one_or_none()
        if recipient is None:
            return []
        member_of = frozenset((await session.execute(select(Membership.association_id).where(
            Membership.user_id == message.recipient_id))).scalars())
        rows = (await session.execute(
            select(Event.title, Event.starts_at, Event.slug, Association.name, Event.association_id,
                   Event.restricted_to, Event.restricted_promos, Event.restricted_emails, Event.hidden_from_others)
            .join(Association, Association.id == Event.association_id)
            .join(Follow, (Follow.association_id == Event.association_id) & (Follow.user_id == message.recipient_id))
            .where(visibility.going_ahead(), Event.published_at >= since, Event.ends_at > utcnow())
            .order_by(Event.starts_at, Event.id).limit(200))).all()
    follower = changes.Follower(recipient.promo, recipient.email, member_of)
    rows = [row for row in rows if restrictions.admits(row, follower)][:50]
    language = message.language if message.language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
    with translation.override(language):  # the dates in the recipient's language, as the rest of the message
        return [f"{row.title} — {date_format(localtime.local(row.starts_at), 'l j F, H:i')} ({row.name}): "
                f"{settings.SITE_URL}/events/{row.slug}/" for row in rows]


async def send_due(transport: Transport | None = None, *, limit: int | None = None) -> SendReport:
    """Claim one batch of due messages and deliver it. Returns what happened."""
    transport = transport or Transport(settings.EMAIL_CONFIG)
    async with db.write_session() as session:
        ids = await outbox_claim(session, limit=limit or settings.OUTBOX_BATCH_SIZE)
    report = SendReport()
    if not ids:
        return report
    async with db.read_session() as session:
        claimed = await _load(session, ids)
    queue = await _approval_queue_titles() if any(m.kind == "digest.approval_queue" for m in claimed) else []
    news = {m.id: await _followed_news(m) for m in claimed if m.kind == "digest.followed"}
    gate = asyncio.Semaphore(settings.OUTBOX_SMTP_CONCURRENCY)

    async def deliver(message: Claimed) -> None:
        reason = drop_reason(message)
        if message.kind == "digest.approval_queue" and not queue:
            reason = "approval queue empty"
        if message.kind == "digest.followed" and not news.get(message.id):
            reason = reason or "nothing new at the associations followed"
        if reason:
            await _finish(message.id, status=OutboxStatus.DROPPED, last_error=reason)
            report.dropped += 1
            return
        try:
            email = build(message, queue=news.get(message.id) or queue)
            async with gate:
                await transport.send(email, message.id)
                # Recorded before the slot is freed: at most one message per slot is ever sent but not
                # yet marked, so a crash re-sends at most those in flight.
                await _finish(message.id, status=OutboxStatus.SENT, sent_at=utcnow(), last_error="")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            permanent = isinstance(error, aiosmtplib.SMTPResponseException) and error.code >= 500
            text = f"{type(error).__name__}: {error}"[:1000]
            report.errors.append(text)
            if permanent or message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
                await _finish(message.id, status=OutboxStatus.FAILED, last_error=text)
                report.failed += 1
                logger.error("outbox message %s failed for good: %s", message.id, text)
            else:
                await _finish(message.id, status=OutboxStatus.PENDING, last_error=text,
                              send_after=utcnow() + retry_delay(message.attempts))
                report.retried += 1
            return
        report.sent += 1

    await asyncio.gather(*(deliver(message) for message in claimed))
    return report


async def send_all_due(transport: Transport | None = None) -> SendReport:
    """Batches until nothing is due (``manage.py sendmail``)."""
    total = SendReport()
    async with db.write_session() as session:
        await approval_digest.digest_enqueue_due(session)
    while True:
        report = await send_due(transport)
        total.sent += report.sent
        total.retried += report.retried
        total.failed += report.failed
        total.dropped += report.dropped
        total.errors += report.errors
        if report.handled == 0 or report.sent + report.dropped == 0:
            return total


async def run_loop(stop: asyncio.Event, *, interval: float = 2.0) -> None:
    """The long-running sender (``sendmail --loop`` or the web process's background task)."""
    transport = Transport(settings.EMAIL_CONFIG)
    while not stop.is_set():
        try:
            async with db.write_session() as session:
                await approval_digest.digest_enqueue_due(session)
            report = await send_due(transport)
        except Exception:
            logger.exception("outbox sender iteration failed; trying again")
            report = SendReport()
        if report.handled == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


class SenderInWeb(hooks.BackgroundTask):
    """The sender as a background task of the web process, when ``OUTBOX_SENDER_IN_WEB`` is on (a lifespan
    hook of the server: hyperion.hooks.LifespanHook, listed in settings.LIFESPAN_HOOKS)."""

    name = "outbox-sender"

    def enabled(self) -> bool:
        return settings.OUTBOX_SENDER_IN_WEB

    async def run(self) -> None:
        await run_loop(self.stopping)


sender_in_web = SenderInWeb()
