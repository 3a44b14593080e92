"""Writing to an event's registrants (events/staff/mailing.py, the view ``attendees_message``): the form counts
each group, the preview shows the e-mail exactly and writes nothing, the sending writes one outbox row per
recipient with its audit entry, a confirmed preview sent twice goes out once, and the recipients' opt-outs
and departures are honoured when each e-mail goes out."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func, select

from events.accounts import services as account_services
from events.models import AuditEntry, EventStatus, OutboxMessage, RegistrationStatus, Role, utcnow
from events.notifications import mailer
from events.rules.permissions import Actor
from events.staff import mailing
from events.staff import people as staff_people
from hyperion import db
from tests import factories
from tests.staff.pages import after_redirect, client_for, registration_at, students, team, url

KEY = "0123456789abcdef" * 2


async def messages_written() -> list[tuple[int, dict]]:
    async with db.read_session() as session:
        rows = await session.execute(select(OutboxMessage.recipient_id, OutboxMessage.payload)
                                     .where(OutboxMessage.kind == mailing.KIND).order_by(OutboxMessage.recipient_id))
        return [(row.recipient_id, row.payload) for row in rows]


async def audit_entries() -> list:
    async with db.read_session() as session:
        return (await session.execute(select(AuditEntry.actor_id, AuditEntry.changes)
                                      .where(AuditEntry.action == "event.message_sent"))).all()


async def gala_with_registrants():
    """A gala of 2 seats: Alice and Bob confirmed, Carol offered a seat, Dan waiting, Eve left."""
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", capacity=2, title="Gala d'hiver")
    alice, bob, carol, dan, eve = await students(5)
    for student in (alice, bob):
        await factories.registration(event_id=event_id, user_id=student)
    # raw: a seat offered and not answered yet (only a departure under an offer policy makes one).
    await registration_at(event_id, carol, RegistrationStatus.OFFERED, utcnow())
    await factories.registration(event_id=event_id, user_id=dan)
    await factories.registration(event_id=event_id, user_id=eve)
    await factories.registration_leave(event_id=event_id, user_id=eve)
    return people, event_id, {"alice": alice, "bob": bob, "carol": carol, "dan": dan, "eve": eve}


def fields(**overrides) -> dict:
    return {"audience": "confirmed", "subject": "Rendez-vous à 19 h", "body": "Bonjour à tous,\n\nRendez-vous "
            "devant le Foyer.\nPensez à votre billet.", "action": "preview", **overrides}


async def sent(client, event_id: int, **changes) -> str:
    """Confirm a preview (``send_key`` KEY unless given): the page the organiser lands on."""
    return await after_redirect(client, await client.post(
        url("staff_attendees_message", event_id), fields(**{"action": "send", "send_key": KEY, **changes})))


async def test_the_form_counts_each_group_and_the_preview_shows_the_email_without_writing_it():
    people, event_id, who = await gala_with_registrants()
    async with db.write_session() as write:
        await account_services.user_email_opt_outs_set(write, user_id=who["bob"], opt_outs=["organisers"])
    manager = await client_for(people.manager)
    event_page = await manager.get(url("staff_event", event_id))
    assert url("staff_attendees_message", event_id) in event_page.text
    form = await manager.get(url("staff_attendees_message", event_id))
    assert form.status_code == 200
    # Bob turned the organisers' messages off: the groups count who will get it.
    for label in ("Confirmed (1)", "Waitlist and seats offered (2)", "Both (3)"):
        assert label in form.text
    preview = await manager.post(url("staff_attendees_message", event_id), fields())
    assert preview.status_code == 200
    assert "It goes to 1 person." in preview.text and "1 more turned the organisers" in preview.text
    assert "Gala d&#39;hiver: Rendez-vous à 19 h" in preview.text  # the subject as sent
    assert "A message from the organisers of" in preview.text and "Pensez à votre billet." in preview.text
    assert "/events/gala/" in preview.text  # the event's link, added by the e-mail
    send_key = re.search(r'name="send_key" value="([0-9a-f]{32})"', preview.text).group(1)
    assert re.search(r'<textarea name="body" hidden[^>]*>Bonjour à tous,\n\nRendez-vous', preview.text)
    assert await messages_written() == [] and await audit_entries() == []
    # "Change it" brings the form back with the text as typed.
    back = await manager.post(url("staff_attendees_message", event_id), fields(action="edit", send_key=send_key))
    assert back.status_code == 200 and 'value="Rendez-vous à 19 h"' in back.text and "Preview" in back.text
    assert await messages_written() == []


async def test_sending_writes_one_message_per_recipient_of_the_group_with_its_audit_entry():
    people, event_id, who = await gala_with_registrants()
    manager = await client_for(people.manager)
    landing = await sent(manager, event_id, audience="waitlist")
    assert "The message goes out to 2 people." in landing
    written = await messages_written()
    assert [recipient for recipient, _payload in written] == sorted([who["carol"], who["dan"]])
    assert written[0][1]["subject"] == "Rendez-vous à 19 h" and "Pensez à votre billet." in written[0][1]["body"]
    ((actor_id, changes),) = await audit_entries()
    assert actor_id == people.manager
    assert changes == {"audience": [None, "waitlist"], "subject": [None, "Rendez-vous à 19 h"],
                       "recipients": [None, 2]}


async def test_the_same_preview_confirmed_twice_sends_once_even_when_both_arrive_together():
    people, event_id, who = await gala_with_registrants()
    manager = await client_for(people.manager)
    first = await sent(manager, event_id, audience="both")
    assert "The message goes out to 4 people." in first
    again = await sent(manager, event_id, audience="both")
    assert "This message was already sent" in again
    assert len(await messages_written()) == 4 and len(await audit_entries()) == 1
    # Two submissions of another preview racing each other: one is written, the other refused.
    actor = Actor(id=people.manager, is_staff=False, roles={people.bde: Role.MANAGER})

    async def send():
        async with db.write_session() as session:
            return await mailing.attendees_message(session, actor=actor, event_id=event_id,
                                                   audience=mailing.Audience.CONFIRMED, subject="Encore",
                                                   body="Texte", send_key="f" * 32)
    outcomes = await asyncio.gather(send(), send(), return_exceptions=True)
    assert sorted(map(type, outcomes), key=str) == sorted([int, mailing.AlreadySent], key=str), outcomes
    assert len(await messages_written()) == 6 and len(await audit_entries()) == 2


@pytest.mark.parametrize(("change", "error"), [
    ({"subject": "x" * 151}, "at most 150 characters"),
    ({"subject": ""}, "This field is required."),
    ({"body": "y" * 5001}, "at most 5000 characters"),
    ({"body": "Rendez-vous \u202eesuoh ym ta"}, "invisible control characters"),
    ({"subject": "Salut\x00"}, "invisible control characters"),
    ({"audience": "everyone"}, "Select a valid choice."),
    ({"action": "send", "send_key": "'; drop table outbox_messages; --"}, "preview the message again"),
], ids=["long-subject", "no-subject", "long-body", "bidi", "nul", "unknown-group", "forged-key"])
async def test_hostile_or_wrong_input_is_refused_on_the_form_and_nothing_is_written(change, error):
    people, event_id, _who = await gala_with_registrants()
    manager = await client_for(people.manager)
    response = await manager.post(url("staff_attendees_message", event_id), fields(**change))
    assert response.status_code == 400 and error in response.text
    assert await messages_written() == [] and await audit_entries() == []


async def test_an_empty_group_or_an_event_not_going_ahead_gets_a_message_and_nothing_is_written():
    people = await team()
    empty = await factories.event(association_id=people.bde, slug="vide", capacity=5)
    manager = await client_for(people.manager)
    landing = await sent(manager, empty)
    assert "Nobody is registered in the chosen group" in landing
    draft = await factories.event(association_id=people.bde, slug="brouillon", status=EventStatus.DRAFT)
    refused = await manager.get(url("staff_attendees_message", draft))
    assert refused.status_code == 302
    assert "Only the registrants of a published event" in await after_redirect(manager, refused)
    assert await messages_written() == [] and await audit_entries() == []


async def test_delivery_honours_opt_outs_and_departures_and_keeps_the_text_as_typed(smtp):
    people, event_id, who = await gala_with_registrants()
    manager = await client_for(people.manager)
    body = "100 % des places <script>alert(1)</script> sont prises.\n\nDeuxième paragraphe,\nsur deux lignes."
    await sent(manager, event_id, audience="both", body=body)
    # After the sending: Bob turns these messages off, Dan leaves; both are dropped when the sender comes.
    async with db.write_session() as write:
        await account_services.user_email_opt_outs_set(write, user_id=who["bob"], opt_outs=["organisers"])
    await factories.registration_leave(event_id=event_id, user_id=who["dan"])
    report = await mailer.send_all_due()
    received = sorted(message["To"] for message in smtp.inbox.messages if "Rendez-vous" in message["Subject"])
    assert received == ["S0 <s0@etu.test>", "S2 <s2@etu.test>"]  # Alice (confirmed) and Carol (offered)
    assert report.dropped >= 2
    (alice_mail,) = [message for message in smtp.inbox.to("s0@etu.test") if "Rendez-vous" in message["Subject"]]
    assert alice_mail["Subject"] == "Gala d'hiver : Rendez-vous à 19 h"  # in Alice's language (French)
    text = alice_mail.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert "Un message des organisateurs de « Gala d'hiver » (BDE) :" in text
    assert "100 % des places <script>alert(1)</script> sont prises." in text
    assert "prises.\n\nDeuxième paragraphe,\nsur deux lignes.\n" in text  # its paragraphs and line breaks
    html = alice_mail.get_body(preferencelist=("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not any(part.get_content_type() == "text/calendar" for part in alice_mail.iter_attachments())


async def test_the_account_page_offers_to_turn_the_organisers_messages_off():
    people = await team()
    student = await client_for(people.student)
    page = await student.get("/account/notifications/")
    assert "Messages from the organisers of my events" in page.text


async def test_counts_leave_out_closed_accounts():
    people, event_id, who = await gala_with_registrants()
    async with db.read_session() as session:
        before = await mailing.audience_reach(session, event_id=event_id)
    assert before[mailing.Audience.BOTH] == mailing.Reach(4, 0)
    async with db.write_session() as session:  # a staff member disables Alice's account
        await staff_people.user_staff_set(session, actor=factories.SET_UP, user_id=who["alice"], is_staff=False,
                                          is_active=False)
    async with db.read_session() as session:
        after = await mailing.audience_reach(session, event_id=event_id)
    assert after[mailing.Audience.CONFIRMED] == mailing.Reach(1, 0)
    assert (await db_count()) == 0


async def db_count() -> int:
    async with db.read_session() as session:
        return (await session.execute(select(func.count()).select_from(OutboxMessage)
                                      .where(OutboxMessage.kind == mailing.KIND))).scalar_one()
