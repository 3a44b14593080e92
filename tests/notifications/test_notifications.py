"""E-mails through the transactional outbox, delivered to a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import icalendar
import pytest
from django.test import override_settings
from sqlalchemy import func, select, update

from events.accounts import services as account_services
from events.models import EventStatus, OutboxMessage, OutboxStatus, Registration, RegistrationStatus, Role, utcnow
from events.notifications import approval_digest, mailer
from events.registration import leaving, offers
from events.registration import services as registration_services
from events.rules.permissions import Actor
from events.staff import people as staff_people
from events.staff import services as staff_services
from hyperion import db
from tests import factories, support
from tests.support import ROOT


async def send() -> mailer.SendReport:
    return await mailer.send_all_due()


async def register(event_id: int, user_id: int):
    async with db.write_session() as session:
        return await registration_services.registration_create(session, event_id=event_id, user_id=user_id)


async def leave(event_id: int, user_id: int):
    async with db.write_session() as session:
        return await leaving.registration_leave(session, event_id=event_id, user_id=user_id)


def ics_of(message) -> icalendar.Calendar | None:
    for part in message.iter_attachments():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_content())
    return None


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


async def outbox_rows(session, **where):
    statement = select(OutboxMessage.kind, OutboxMessage.recipient_id, OutboxMessage.status)
    for name, value in where.items():
        statement = statement.where(getattr(OutboxMessage, name) == value)
    return (await session.execute(statement.order_by(OutboxMessage.id))).all()


async def test_registration_confirmed_sends_one_french_email_with_a_request_invitation(smtp):
    event_id = await factories.event(association_id=await factories.association(), slug="gala",
                                          title="Gala d'hiver", location="Grand Hall")
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    await register(event_id, alice)
    report = await send()
    assert report.sent == 1
    (message,) = smtp.inbox.messages
    assert message["To"] == "Alice <alice@etu.test>"
    assert message["Subject"] == "Inscription confirmée : Gala d'hiver"
    assert message["Content-Language"] == "fr"
    assert message["Message-ID"].startswith("<outbox-") and message["List-Unsubscribe"].endswith(
        "/account/notifications/>")
    assert "Grand Hall" in text_of(message) and "http://127.0.0.1:8000/events/gala/" in text_of(message)
    calendar = ics_of(message)
    assert calendar["METHOD"] == "REQUEST"
    (vevent,) = calendar.walk("VEVENT")
    assert str(vevent["UID"]) == f"event-{event_id}@hyperion-events" and vevent["STATUS"] == "CONFIRMED"


async def test_messages_are_in_the_recipients_language(smtp):
    event_id = await factories.event(association_id=await factories.association(), title="Gala")
    bob = await factories.user(email="bob@etu.test", display_name="Bob", language="en")
    await register(event_id, bob)
    await send()
    (message,) = smtp.inbox.messages
    assert message["Subject"] == "Registration confirmed: Gala" and message["Content-Language"] == "en"
    assert "Hello Bob," in text_of(message)


async def test_waitlist_then_promotion_then_leaving_each_tell_the_student(smtp, session):
    event_id = await factories.event(association_id=await factories.association(), capacity=1)
    first = await factories.user(email="first@etu.test", display_name="First")
    second = await factories.user(email="second@etu.test", display_name="Second")
    await register(event_id, first)
    await register(event_id, second)
    await send()
    waitlisted = smtp.inbox.to("second@etu.test")[0]
    assert "liste d'attente" in waitlisted["Subject"] and "position 1" in text_of(waitlisted)
    assert ics_of(waitlisted) is None  # not in their calendar yet
    await leave(event_id, first)
    await send()
    left = smtp.inbox.to("first@etu.test")[-1]
    assert ics_of(left)["METHOD"] == "CANCEL"
    promoted = smtp.inbox.to("second@etu.test")[-1]
    assert "Vous avez une place" in promoted["Subject"] and ics_of(promoted)["METHOD"] == "REQUEST"
    kinds = Counter(kind for kind, _user, _status in await outbox_rows(session))
    assert kinds == {"registration.confirmed": 1, "registration.waitlisted": 1, "registration.left": 1,
                     "registration.promoted": 1, "event.reminder": 2}


async def test_an_offer_tells_until_when_and_its_expiry_tells_both_students(smtp, session):
    event_id = await factories.event(association_id=await factories.association(), slug="gala", title="Gala",
                                     capacity=1, offer_hours=24)
    holder, first, second = [await factories.user(email=f"{name}@etu.test", display_name=name.title())
                             for name in ("holder", "first", "second")]
    for user_id in (holder, first, second):
        await register(event_id, user_id)
    await leave(event_id, holder)
    await send()
    # Looked for by subject: the waitlist message went out in the same sending, in no set order.
    (offered,) = [message for message in smtp.inbox.to("first@etu.test")
                  if message["Subject"] == "Une place vous est proposée : Gala"]
    assert ics_of(offered) is None
    assert "avant le" in text_of(offered) and "http://127.0.0.1:8000/events/gala/" in text_of(offered)
    async with db.write_session() as write, write.begin():  # raw: the deadline passes (no service moves the clock)
        await write.execute(update(Registration).where(Registration.user_id == first)
                            .values(offer_expires_at=utcnow() - timedelta(seconds=1)))
    await offers.expire_due()
    await send()
    # (Subjects, not the last one: messages of one sending go out concurrently, in no set order.)
    assert "Proposition expirée : Gala" in [message["Subject"] for message in smtp.inbox.to("first@etu.test")]
    assert "Une place vous est proposée : Gala" in [message["Subject"] for message in
                                                    smtp.inbox.to("second@etu.test")]
    async with db.write_session() as write:
        await offers.offer_accept(write, event_id=event_id, user_id=second)
    await send()
    (accepted,) = [message for message in smtp.inbox.to("second@etu.test")
                   if message["Subject"] == "Place acceptée : Gala"]
    assert ics_of(accepted)["METHOD"] == "REQUEST"


async def test_a_refused_or_rolled_back_change_sends_nothing(smtp, session):
    event_id = await factories.event(association_id=await factories.association(),
                                          status=EventStatus.DRAFT)
    alice = await factories.user()
    with pytest.raises(registration_services.RegistrationClosed):
        await register(event_id, alice)
    with pytest.raises(RuntimeError):
        async with db.write_session() as write, write.begin():
            from events import outbox
            await outbox.notify(write, kind="registration.confirmed", recipient_ids=[alice],
                                       event_id=event_id)
            raise RuntimeError("the change failed after writing its message")
    assert await outbox_rows(session) == []
    assert (await send()).handled == 0 and smtp.inbox.messages == []


async def _staff_and_manager():
    association_id = await factories.association()
    staff = await factories.user(email="staff@hyperion.test", display_name="Staff", is_staff=True)
    editor = await factories.user(email="editor@etu.test", display_name="Editor")
    async with db.write_session() as session:
        await staff_people.role_set(session, actor=None, association_id=association_id, email="editor@etu.test",
                                      role=Role.MANAGER)
    return association_id, Actor(staff, True), Actor(editor, False, {association_id: Role.MANAGER})


async def test_cancelling_an_event_tells_every_registrant_with_the_reason_and_drops_reminders(smtp, session):
    association_id, staff, manager = await _staff_and_manager()
    event_id = await factories.event(association_id=association_id, capacity=2, title="Concert",
                                          starts_at=utcnow() + timedelta(days=10))
    students = [await factories.user(email=f"s{n}@etu.test", display_name=f"S{n}") for n in range(3)]
    for student in students:
        await register(event_id, student)
    await send()
    smtp.inbox.messages.clear()
    async with db.write_session() as write:
        await staff_services.event_transition(write, actor=manager, event_id=event_id, action="cancel",
                                              reason="Salle inondée <b>désolés</b>")
    await send()
    assert sorted(m["To"] for m in smtp.inbox.messages) == [f"S{n} <s{n}@etu.test>" for n in range(3)]
    for message in smtp.inbox.messages:
        assert message["Subject"] == "Annulé : Concert"
        assert "Salle inondée <b>désolés</b>" in text_of(message)
        assert "Salle inondée &lt;b&gt;désolés&lt;/b&gt;" in html_of(message)
        assert ics_of(message)["METHOD"] == "CANCEL"
    reminders = await outbox_rows(session, kind="event.reminder")
    assert reminders and all(status == OutboxStatus.DROPPED for _k, _u, status in reminders)


async def test_a_changed_date_tells_registrants_and_moves_their_reminders(smtp, session):
    association_id, _staff, manager = await _staff_and_manager()
    start = utcnow() + timedelta(days=10)
    event_id = await factories.event(association_id=association_id, title="Match", starts_at=start)
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    await register(event_id, alice)
    await send()
    smtp.inbox.messages.clear()
    async with db.write_session() as write:
        result = await staff_services.event_update(write, actor=manager, event_id=event_id,
                                                   values={"starts_at": start + timedelta(days=2),
                                                           "ends_at": start + timedelta(days=2, hours=3)})
    assert result.schedule_changed
    await send()
    (message,) = smtp.inbox.messages
    assert message["Subject"] == "Modifié : Match"
    (vevent,) = ics_of(message).walk("VEVENT")
    assert vevent["SEQUENCE"] == 1 and ics_of(message)["METHOD"] == "REQUEST"
    send_after = (await session.execute(select(OutboxMessage.send_after).where(
        OutboxMessage.kind == "event.reminder"))).scalar_one()
    from events.outbox import reminder_time
    assert send_after == reminder_time(start + timedelta(days=2))


async def test_approval_and_decline_tell_the_associations_editors(smtp):
    association_id, staff, _manager = await _staff_and_manager()
    first = await factories.event(association_id=association_id, slug="a", title="A",
                                       status=EventStatus.SUBMITTED)
    second = await factories.event(association_id=association_id, slug="b", title="B",
                                        status=EventStatus.SUBMITTED)
    async with db.write_session() as write:
        await staff_services.event_transition(write, actor=staff, event_id=first, action="approve")
    async with db.write_session() as write:
        await staff_services.event_transition(write, actor=staff, event_id=second, action="decline",
                                              reason="Date déjà prise")
    await send()
    subjects = sorted(m["Subject"] for m in smtp.inbox.to("editor@etu.test"))
    assert subjects == ["Approuvé : A", "Refusé : B"]
    assert "Date déjà prise" in text_of(next(m for m in smtp.inbox.messages if m["Subject"] == "Refusé : B"))
    assert smtp.inbox.to("staff@hyperion.test") == []


async def test_removed_by_staff_tells_the_student(smtp):
    association_id, staff, _manager = await _staff_and_manager()
    event_id = await factories.event(association_id=association_id, title="Gala")
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    outcome = await register(event_id, alice)
    async with db.write_session() as write:
        await staff_people.attendee_remove(write, actor=staff, event_id=event_id,
                                             registration_id=outcome.registration_id)
    await send()
    assert sorted(m["Subject"] for m in smtp.inbox.to("alice@etu.test")) == [
        "Inscription annulée : Gala", "Inscription confirmée : Gala"]


async def _reminders_sent_when_due(smtp) -> list[str]:
    """Time passes: the pending reminders become due and go out; whom they reached (never twice)."""
    # raw: the reminders are made due by hand, as time passing would (no service moves the clock).
    async with db.write_session() as write, write.begin():
        await write.execute(update(OutboxMessage).where(OutboxMessage.kind == "event.reminder")
                            .values(send_after=utcnow() - timedelta(minutes=1)))
    await send()
    assert (await send()).handled == 0
    return [m["To"] for m in smtp.inbox.messages if m["Subject"] == "Demain : Rando"]


async def test_reminder_goes_out_the_evening_before_and_only_while_confirmed(smtp, session):
    event_id = await factories.event(association_id=await factories.association(), title="Rando",
                                          starts_at=utcnow() + timedelta(days=5))
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    bob = await factories.user(email="bob@etu.test", display_name="Bob")
    await register(event_id, alice)
    await register(event_id, bob)
    await send()
    assert not [m for m in smtp.inbox.messages if "Demain" in m["Subject"]]  # not due yet
    await leave(event_id, bob)
    assert await _reminders_sent_when_due(smtp) == ["Alice <alice@etu.test>"]


async def test_coming_back_after_leaving_re_arms_the_one_reminder(smtp, session):
    event_id = await factories.event(association_id=await factories.association(), title="Rando",
                                          starts_at=utcnow() + timedelta(days=5))
    alice = await factories.user(email="alice@etu.test", display_name="Alice")
    await register(event_id, alice)
    await leave(event_id, alice)
    await register(event_id, alice)
    assert await _reminders_sent_when_due(smtp) == ["Alice <alice@etu.test>"]


async def test_opt_outs_are_honoured_at_send_time(smtp, session):
    event_id = await factories.event(association_id=await factories.association())
    alice = await factories.user(email="alice@etu.test")
    await register(event_id, alice)
    async with db.write_session() as write:
        await account_services.user_email_opt_outs_set(write, user_id=alice, opt_outs=["registration"])
    report = await send()
    assert report.sent == 0 and report.dropped == 1 and smtp.inbox.messages == []


async def test_user_text_cannot_inject_headers_or_html(smtp):
    event_id = await factories.event(association_id=await factories.association(),
                                          title="Gala\r\nBcc: victim@evil.test\r\n<script>alert(1)</script>")
    alice = await factories.user(email="alice@etu.test", display_name="Alice\r\nX-Evil: 1 <b>bold</b>")
    await register(event_id, alice)
    assert (await send()).sent == 1
    (message,) = smtp.inbox.messages
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "\n" not in message["Subject"] and "<script>" in message["Subject"]  # text, in a header
    assert smtp.inbox.envelopes[0][1] == ["alice@etu.test"]
    html = html_of(message)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>bold</b>" not in html


async def test_smtp_down_messages_wait_and_go_out_when_it_returns(smtp, session):
    event_id = await factories.event(association_id=await factories.association())
    alice = await factories.user(email="alice@etu.test")
    await register(event_id, alice)
    smtp.stop()
    report = await send()
    assert report.retried == 1 and report.sent == 0
    ((kind, _user, status),) = [row for row in await outbox_rows(session) if row[0] != "event.reminder"]
    assert status == OutboxStatus.PENDING
    smtp.start()
    assert (await send()).sent == 1
    assert len(smtp.inbox.messages) == 1


async def test_after_the_last_attempt_a_message_is_failed_and_staff_can_retry_it(smtp, session, async_client):
    event_id = await factories.event(association_id=await factories.association())
    alice = await factories.user(email="alice@etu.test")
    await register(event_id, alice)
    smtp.stop()
    with override_settings(OUTBOX_MAX_ATTEMPTS=2):
        await send()
        await send()
    failed = (await session.execute(select(OutboxMessage.id, OutboxMessage.last_error).where(
        OutboxMessage.status == OutboxStatus.FAILED))).one()
    assert "Error" in failed.last_error or "refused" in failed.last_error.lower()
    staff = await factories.user(email="staff@hyperion.test", is_staff=True)
    await support.login(async_client, staff)
    page = (await async_client.get("/manage/outbox/")).text
    assert "alice@etu.test" in page
    assert (await async_client.post(f"/manage/outbox/{failed.id}/retry/")).status_code == 302
    smtp.start()
    assert (await send()).sent == 1


async def test_staff_get_a_daily_digest_only_when_events_wait(smtp, session):
    association_id = await factories.association()
    await factories.user(email="staff@hyperion.test", display_name="Staff", is_staff=True)
    morning = utcnow()
    async with db.write_session() as write:
        with override_settings(DIGEST_HOUR=0):
            assert await approval_digest.digest_enqueue_due(write, now=morning) == 0  # empty queue: nothing
    await factories.event(association_id=association_id, title="À valider", status=EventStatus.SUBMITTED,
                               submitted_at=utcnow())
    for _ in range(2):  # two senders, or two loops, on the same day: one digest
        async with db.write_session() as write:
            with override_settings(DIGEST_HOUR=0):
                await approval_digest.digest_enqueue_due(write, now=morning)
    await send()
    (digest,) = smtp.inbox.to("staff@hyperion.test")
    assert "attendent votre validation" in digest["Subject"] and "À valider" in text_of(digest)


async def test_cancelling_a_big_event_writes_its_messages_in_one_go(smtp, session):
    association_id, _staff, manager = await _staff_and_manager()
    event_id = await factories.event(association_id=association_id, capacity=None)
    from sqlalchemy import insert

    from events.models import Registration, User
    # raw: 500 accounts and registrations in two statements (one service call each would take minutes).
    async with db.write_session() as write, write.begin():
        ids = (await write.execute(insert(User).returning(User.id, sort_by_parameter_order=True), [
            {"email": f"big{n}@etu.test", "display_name": f"Big {n}", "password_hash": "!"}
            for n in range(500)])).scalars().all()
        await write.execute(insert(Registration), [
            {"event_id": event_id, "user_id": user_id, "status": RegistrationStatus.CONFIRMED} for user_id in ids])
    async with db.write_session() as write:
        await staff_services.event_transition(write, actor=manager, event_id=event_id, action="cancel",
                                              reason="Annulé")
    count = (await session.execute(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == "event.cancelled"))).scalar_one()
    assert count == 500


def _sendmail(smtp_url: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "sendmail", *extra], cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "EMAIL_URL": smtp_url,
             "OUTBOX_RETRY_BASE_SECONDS": "0", **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def _pending_messages(count: int) -> None:
    event_id = await factories.event(association_id=await factories.association(), capacity=None)
    from events import outbox
    users = [await factories.user(email=f"u{n}@etu.test", display_name=f"U{n}") for n in range(count)]
    async with db.write_session() as write, write.begin():
        await outbox.notify(write, kind="registration.confirmed", recipient_ids=users, event_id=event_id)


LEASE_SECONDS = 60  # long enough that the restarted sender never retakes its own claims


async def test_a_sender_killed_mid_batch_loses_nothing_and_resends_only_the_message_in_flight(smtp, session):
    await _pending_messages(30)
    worker: dict[str, subprocess.Popen] = {}

    def kill_at_tenth(message, count):
        if count == 10:  # delivered, but the sender dies before it hears "250" and marks it sent
            os.kill(worker["process"].pid, signal.SIGKILL)
            smtp.inbox.in_flight = message["Message-ID"]

    smtp.inbox.on_message = kill_at_tenth
    worker["process"] = _sendmail(smtp.url, "--loop", env={"OUTBOX_SMTP_CONCURRENCY": "1",
                                                          "OUTBOX_BATCH_SIZE": "30"})
    try:
        await asyncio.to_thread(worker["process"].wait, 60)
    finally:
        if worker["process"].poll() is None:
            worker["process"].kill()
    assert worker["process"].returncode == -signal.SIGKILL
    smtp.inbox.on_message = None
    # raw: the dead sender's lease expires: its claims are moved back past the lease the restarted sender reads
    # (the clock the claim check compares them with), instead of waiting the lease out.
    async with db.write_session() as write, write.begin():
        dead_claims = (await write.execute(
            update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.SENDING)
            .values(claimed_at=utcnow() - timedelta(seconds=2 * LEASE_SECONDS)))).rowcount
    assert dead_claims > 0  # the batch the dead sender had claimed and not finished
    restarted = _sendmail(smtp.url, env={"OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS)})
    try:
        stdout, stderr = await asyncio.to_thread(restarted.communicate, timeout=60)
    finally:
        if restarted.poll() is None:  # never leave a sender behind, whatever happened
            restarted.kill()
    assert restarted.returncode == 0, stderr
    received = Counter(message["Message-ID"] for message in smtp.inbox.messages)
    assert len(received) == 30  # nothing lost
    assert {mid for mid, n in received.items() if n > 1} == {smtp.inbox.in_flight}  # only the one in flight
    assert received[smtp.inbox.in_flight] == 2
    statuses = set((await session.execute(select(OutboxMessage.status))).scalars())
    assert statuses == {OutboxStatus.SENT}


async def test_two_senders_at_once_never_send_a_message_twice(smtp, session):
    await _pending_messages(120)
    senders = [_sendmail(smtp.url, env={"OUTBOX_BATCH_SIZE": "10"}) for _ in range(2)]
    try:
        for sender in senders:
            _out, err = await asyncio.to_thread(sender.communicate, timeout=120)
            assert sender.returncode == 0, err
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
    received = Counter(message["Message-ID"] for message in smtp.inbox.messages)
    assert len(received) == 120 and set(received.values()) == {1}


async def test_notification_preferences_page_turns_families_off(async_client, session):
    alice = await factories.user(email="alice@etu.test")
    await support.login(async_client, alice)
    page = await async_client.get("/account/notifications/", headers={"Accept-Language": "en"})
    assert "Reminders the day before my events" in page.text
    response = await async_client.post("/account/notifications/", {"registration": "on", "event_changes": "on"})
    assert response.status_code == 302
    from events.models import User
    opt_outs = (await session.execute(select(User.email_opt_outs).where(User.id == alice))).scalar_one()
    assert opt_outs == ["decisions", "digest", "followed", "organisers", "reminders"]
