"""Writes of the operators' command line (manage.py createstaff, importics, purgeusers) and their small reads.

Same habits as the registration and staff services: each writing function owns its transaction, checks its
rule inside it and writes its audit entry (``actor_id=None``: the operator at the shell) in the same
transaction, and says no with a ``DomainError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _
from sqlalchemy import String, cast, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events.accounts.services import EmailTaken
from events.audit import audit_log, diff
from events.errors import DomainError, NotFound
from events.live import broadcast
from events.localtime import site_zone
from events.models import (
    Association,
    AuthSession,
    Event,
    EventStatus,
    Follow,
    Membership,
    Registration,
    RegistrationAnswers,
    RegistrationStatus,
    Throttle,
    User,
    utcnow,
)
from events.notifications import changes as event_changes
from events.ops.ical_import import ImportedEvent
from events.registration import leaving
from events.rules import emails, lifecycle, visibility
from events.staff.services import unique_slug

Progress = Callable[[int, int], None]  # (done, total)


def _no_progress(done: int, total: int) -> None:
    return None


class AssociationNotFound(NotFound):
    message = _("No association with this address.")


class PasswordRequired(DomainError):
    message = _("A new account needs a password.")


class AccountAnonymised(DomainError):
    message = _("This account was anonymised: it cannot be used again.")


class AnonymousEmailTaken(DomainError):
    message = _("An account already uses an address of the anonymised form: nothing was purged.")


class ImportConflict(DomainError):
    message = _("Another change to the same events happened during the import: nothing was imported, run it again.")


# Accounts.

@dataclass(frozen=True, slots=True)
class AccountState:
    id: int
    is_staff: bool
    is_active: bool
    anonymised: bool


@dataclass(frozen=True, slots=True)
class StaffOutcome:
    user_id: int
    created: bool  # a new account (else an existing one was promoted, or already was staff)
    changed: bool  # False: it already was active staff, nothing written


async def account_by_email(session: AsyncSession, *, email: str) -> AccountState | None:
    row = (await session.execute(
        select(User.id, User.is_staff, User.is_active, User.anonymised_at)
        .where(User.email == emails.normalize_email(email))
    )).first()
    if row is None:
        return None
    return AccountState(id=row.id, is_staff=row.is_staff, is_active=row.is_active,
                        anonymised=row.anonymised_at is not None)


async def staff_create(
    session: AsyncSession, *, email: str, display_name: str, password_hash: str | None, promote: bool = False,
) -> StaffOutcome:
    """A new active staff account; or, with ``promote``, make the existing account of ``email`` active staff.

    The insert is services.user_create's, inlined: user_create begins its own transaction, and the account
    and its audit entry must commit together.
    """
    email = emails.normalize_email(email)
    try:
        async with session.begin():
            user = (await session.execute(
                select(User).where(User.email == email).with_for_update())).scalar_one_or_none()
            if user is not None:
                if not promote:
                    raise EmailTaken
                if user.anonymised_at is not None:
                    raise AccountAnonymised
                if user.is_staff and user.is_active:
                    return StaffOutcome(user_id=user.id, created=False, changed=False)
                changes = diff({"is_staff": user.is_staff, "is_active": user.is_active},
                               {"is_staff": True, "is_active": True})
                user.is_staff, user.is_active = True, True
                await session.flush()
                await audit_log(session, actor_id=None, action="user.staff_promoted", object_type="user",
                                object_id=user.id, changes=changes)
                return StaffOutcome(user_id=user.id, created=False, changed=True)
            if not password_hash:
                raise PasswordRequired
            user_id = (await session.execute(insert(User).returning(User.id), {
                "email": email, "display_name": display_name.strip(), "password_hash": password_hash,
                "promo": None, "is_staff": True, "is_active": True, "language": "fr", "created_at": utcnow(),
                "email_verified_at": utcnow(),  # an operator made it: no link to open
            })).scalar_one()
            await audit_log(session, actor_id=None, action="user.staff_created", object_type="user",
                            object_id=user_id, changes={"is_staff": [None, True]})
            return StaffOutcome(user_id=user_id, created=True, changed=True)
    except IntegrityError as exc:  # created by someone else between our look-up and our insert
        raise EmailTaken from exc


ANONYMOUS_NAME = "Ancien membre"
ANONYMOUS_EMAIL_DOMAIN = "invalid.hyperion"
_PURGE_BATCH = 500


def _purgeable(*, inactive_before: datetime, now: datetime):
    """Accounts not seen since ``inactive_before``, neither staff nor anonymised, and not visibly in use:
    no live session, no place (confirmed or in line) at an event still to come."""
    live_session = select(AuthSession.token_hash).where(
        AuthSession.user_id == User.id, AuthSession.expires_at > now).exists()
    coming_registration = (
        select(Registration.id)
        .join(Event, Event.id == Registration.event_id)
        .where(Registration.user_id == User.id,
               Registration.status.in_((RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED,
                                        RegistrationStatus.OFFERED)),
               visibility.still_to_come(now))
        .exists()
    )
    return (
        func.coalesce(User.last_login_at, User.created_at) < inactive_before,
        User.is_staff.is_(False),
        User.anonymised_at.is_(None),
        ~live_session,
        ~coming_registration,
    )


async def users_purge(
    session: AsyncSession, *, inactive_before: datetime, dry_run: bool = False, now: datetime | None = None,
    progress: Progress = _no_progress,
) -> int:
    """Anonymise the accounts inactive since ``inactive_before`` (see ``_purgeable``); returns how many.

    Personal data goes (e-mail, name, password, promo, feed token, sessions, memberships, recorded log-in
    failures); registrations stay, so past events keep their counts. One audit entry for the run, with the
    count only: a log of who was purged would itself be personal data.
    """
    now = now or utcnow()
    try:
        async with session.begin():
            rows = (await session.execute(
                select(User.id, User.email)
                .where(*_purgeable(inactive_before=inactive_before, now=now))
                .order_by(User.id)
                .with_for_update(of=User)
            )).all()
            if dry_run:
                return len(rows)
            progress(0, len(rows))
            for start in range(0, len(rows), _PURGE_BATCH):
                batch = rows[start:start + _PURGE_BATCH]
                await _anonymise(session, batch, now=now)
                progress(start + len(batch), len(rows))
            await audit_log(session, actor_id=None, action="users.purged", object_type="user", object_id=None,
                            changes={"count": len(rows), "inactive_before": inactive_before})
    except IntegrityError as exc:  # deleted-ID@invalid.hyperion can only be taken by a hand-made account
        raise AnonymousEmailTaken from exc
    return len(rows)


async def _anonymise(session: AsyncSession, rows, *, now: datetime) -> None:
    """Personal data of these accounts (rows of id and email) goes: e-mail, name, password, promo, feed token,
    sessions, memberships, follows, answers to registration questions, recorded log-in failures. Registrations stay, so
    past events keep their counts. The caller holds the transaction."""
    user_ids = [row.id for row in rows]
    await session.execute(delete(AuthSession).where(AuthSession.user_id.in_(user_ids)))
    await session.execute(delete(RegistrationAnswers).where(RegistrationAnswers.user_id.in_(user_ids)))
    await session.execute(delete(Follow).where(Follow.user_id.in_(user_ids)))
    await session.execute(delete(Membership).where(Membership.user_id.in_(user_ids)))
    await session.execute(delete(Throttle).where(Throttle.subject.in_(
        [row.email for row in rows] + [str(user_id) for user_id in user_ids])))
    await session.execute(
        update(User).where(User.id.in_(user_ids)).values(
            email=literal("deleted-") + cast(User.id, String) + literal(f"@{ANONYMOUS_EMAIL_DOMAIN}"),
            display_name=ANONYMOUS_NAME, password_hash="!", promo=None, feed_token_hash=None,  # noqa: S106 - "!" is the unusable-password marker  # nosec B106
            is_active=False, anonymised_at=now,
        )
    )


class StaffAccountNotClosedHere(DomainError):
    message = _("A staff account is closed by another staff member, who first takes its staff role away.")


async def account_delete(session: AsyncSession, *, user_id: int, now: datetime | None = None) -> None:
    """The student closes their account (the GDPR's right to erasure): their places at events still to come
    are released (a freed seat goes to the first in line, each under its event's lock), then their personal
    data goes as ``users_purge`` does it. Past registrations stay, anonymised, so that past events keep their
    counts. Safe to run again after a crash: what was released stays released."""
    now = now or utcnow()
    async with session.begin():
        account = (await session.execute(select(User.id, User.email, User.is_staff).where(
            User.id == user_id, User.anonymised_at.is_(None)))).one_or_none()
        if account is not None and account.is_staff:
            raise StaffAccountNotClosedHere
        coming = (await session.execute(
            select(Registration.event_id).join(Event, Event.id == Registration.event_id)
            .where(Registration.user_id == user_id, Event.ends_at > now,
                   Registration.status.not_in((RegistrationStatus.CANCELLED, RegistrationStatus.EXPIRED)))
        )).scalars().all()
    if account is None:
        return
    for event_id in coming:
        await leaving.registration_release(session, event_id=event_id, user_id=user_id)
    async with session.begin():
        await _anonymise(session, [account], now=now)
        # Who closed their account is not logged: the log would itself be personal data.
        await audit_log(session, actor_id=None, action="account.deleted", object_type="user", object_id=None,
                        changes={"released_registrations": len(coming)})


# Events.

@dataclass(frozen=True, slots=True)
class EventRef:
    id: int
    slug: str
    status: EventStatus


async def event_by_slug(session: AsyncSession, *, slug: str) -> EventRef | None:
    row = (await session.execute(select(Event.id, Event.slug, Event.status).where(Event.slug == slug))).first()
    return None if row is None else EventRef(id=row.id, slug=row.slug, status=row.status)


async def events_with_waitlist(session: AsyncSession, *, now: datetime | None = None) -> list[EventRef]:
    """Approved events not yet over that have someone in line or a seat offered, in start order."""
    now = now or utcnow()
    waiting = select(Registration.id).where(
        Registration.event_id == Event.id,
        Registration.status.in_((RegistrationStatus.WAITLISTED, RegistrationStatus.OFFERED))).exists()
    rows = (await session.execute(
        select(Event.id, Event.slug, Event.status)
        .where(visibility.still_to_come(now), waiting)
        .order_by(Event.starts_at, Event.id)
    )).all()
    return [EventRef(id=row.id, slug=row.slug, status=row.status) for row in rows]


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    created: int
    updated: int
    unchanged: int
    # UIDs left alone, one line each: imported into another association, say.
    notes: tuple[str, ...] = ()


# What an import may change on an event it created before; the rest (category, capacity, registration
# window) belongs to the association once the event exists.
IMPORTED_FIELDS = ("title", "description", "location", "starts_at", "ends_at", "all_day")
_UID_BATCH = 500


async def events_import(
    session: AsyncSession, *, association_slug: str, events: Sequence[ImportedEvent], draft: bool = False,
    progress: Progress = _no_progress,
) -> ImportOutcome:
    """Create or update ``association_slug``'s events from parsed VEVENTs, idempotent by UID, in one
    transaction (an error leaves the database as it was).

    A new UID becomes an event, approved (published at once: the calendar is trusted) or a draft with
    ``draft``; cancelled in the file, it is created cancelled. A known UID takes the file's title,
    description, place and times when they differ (SEQUENCE bumped so calendars take the change); a
    CANCELLED status cancels an approved event, and nothing else changes a status (a cancelled event is
    not reinstated, a draft waits for staff).
    """
    try:
        async with session.begin():
            association_id = (await session.execute(
                select(Association.id).where(Association.slug == association_slug))).scalar_one_or_none()
            if association_id is None:
                raise AssociationNotFound
            known = await _events_by_uid(session, [item.uid for item in events])
            created = updated = unchanged = 0
            notes: list[str] = []
            progress(0, len(events))
            for done, item in enumerate(events, 1):
                event = known.get(item.uid)
                if event is None:
                    await _event_import_new(session, association_id=association_id, item=item, draft=draft)
                    created += 1
                elif event.association_id != association_id:
                    notes.append(f"UID {item.uid} belongs to an event of another association ({event.slug}): "
                                 "left alone")
                    unchanged += 1
                elif await _event_import_update(session, event=event, item=item):
                    await broadcast.seats_changed(session, event_id=event.id)  # its page, counter and the lists
                    updated += 1
                else:
                    unchanged += 1
                progress(done, len(events))
            if created:
                await broadcast.seats_changed(session, event_id=0)  # new events in the public lists
    except IntegrityError as exc:  # a concurrent import created one of our UIDs first
        raise ImportConflict from exc
    return ImportOutcome(created=created, updated=updated, unchanged=unchanged, notes=tuple(notes))


async def _events_by_uid(session: AsyncSession, uids: list[str]) -> dict[str | None, Event]:
    found: dict[str | None, Event] = {}
    for start in range(0, len(uids), _UID_BATCH):
        statement = select(Event).where(Event.ical_uid.in_(uids[start:start + _UID_BATCH])).with_for_update()
        found.update({event.ical_uid: event for event in (await session.execute(statement)).scalars()})
    return found


async def _event_import_new(session: AsyncSession, *, association_id: int, item: ImportedEvent, draft: bool) -> None:
    status = EventStatus.CANCELLED if item.cancelled else EventStatus.DRAFT if draft else EventStatus.APPROVED
    now = utcnow()
    values: dict[str, Any] = {
        "title": item.title, "description": item.description, "location": item.location,
        "category": item.category, "starts_at": item.starts_at, "ends_at": item.ends_at, "all_day": item.all_day,
    }
    event = Event(
        **values, association_id=association_id, ical_uid=item.uid, status=status, capacity=None,
        slug=await unique_slug(session, item.title, item.starts_at.astimezone(site_zone()).date()),
        created_at=now, updated_at=now,
    )
    session.add(event)
    await session.flush()  # the next slug must see this one (the session does not autoflush)
    if visibility.goes_ahead(status):  # imported as published: its followers hear of it
        await event_changes.event_published(session, event=event)
    await audit_log(session, actor_id=None, action="event.imported", object_type="event", object_id=event.id,
                    association_id=association_id,
                    changes=diff({}, {**values, "status": status, "ical_uid": item.uid}))


async def _event_import_update(session: AsyncSession, *, event: Event, item: ImportedEvent) -> bool:
    before: dict[str, Any] = {name: getattr(event, name) for name in (*IMPORTED_FIELDS, "status")}
    after = {**before, **{name: getattr(item, name) for name in IMPORTED_FIELDS}}
    if item.cancelled and lifecycle.can_transition(event.status, "cancel"):
        after["status"] = lifecycle.target_of("cancel")
    changes = diff(before, after)
    if not changes:
        return False
    for name, value in after.items():
        setattr(event, name, value)
    event.updated_at = utcnow()
    # Registrants and calendars hear of a cancellation or any other change exactly as after an edit in the
    # management area (events/notifications/changes.py).
    if "status" in changes:
        await event_changes.event_cancelled(session, event=event)
    else:
        await event_changes.event_changed(session, event=event, changed_fields=changes)
    await session.flush()
    action = lifecycle.AUDIT_ACTIONS["cancel"] if "status" in changes else "event.updated"
    await audit_log(session, actor_id=None, action=action,
                    object_type="event", object_id=event.id, association_id=event.association_id,
                    changes={**changes, "source": [None, "importics"]})
    return True
