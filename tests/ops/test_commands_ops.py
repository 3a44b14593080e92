"""The operators' commands (createstaff, setrole, importics, exportics, promotewaitlist, purgeusers,
drawlotteries), run as an operator runs them: ``manage.py`` in a child process against the test database
(in-process ``call_command`` only for refusals that come before any query). Each does what it says in the
database, the idempotent ones change nothing the second time, and wrong input fails in one clear line,
without a traceback."""

from __future__ import annotations

import os
import select as fd_select
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial

import icalendar
import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from sqlalchemy import func, insert, select, update

from events.feeds.ical import event_uid
from events.models import (
    AuditEntry,
    AuthSession,
    Event,
    EventStatus,
    Membership,
    Registration,
    RegistrationStatus,
    Role,
    Throttle,
    User,
    utcnow,
)
from hyperion import db
from tests import factories, support
from tests.support import ROOT

OPS_COMMANDS = ["createstaff", "setrole", "importics", "exportics", "promotewaitlist", "purgeusers", "drawlotteries"]


def manage(*args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 60,
           ) -> subprocess.CompletedProcess:
    """Run manage.py as an operator would, but with standard input a pipe (``stdin``), never a terminal."""
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, input=stdin,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **(env or {})},
    )


def run_each(*runs: Callable[[], subprocess.CompletedProcess]) -> list[subprocess.CompletedProcess]:
    """Independent runs at once: each child spends a second or more importing before it does anything."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda run: run(), runs))


def assert_fails_clearly(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def manage_on_terminal(*args: str, answers: list[tuple[str, str]], timeout: float = 60) -> tuple[int, str]:
    """Run manage.py on a pseudo-terminal, typing each answer once its prompt shows; returns the exit code
    and everything the terminal showed (what was typed included, where the terminal echoed it)."""
    master, slave = os.openpty()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, stdin=slave, stdout=slave, stderr=slave,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}, start_new_session=True,
    )
    os.close(slave)
    shown, cursor, pending = "", 0, list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if fd_select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the command exited and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk.decode(errors="replace")
            if pending and (found := shown.find(pending[0][0], cursor)) >= 0:
                cursor = found + len(pending[0][0])
                os.write(master, pending.pop(0)[1].encode() + b"\n")
        else:
            raise AssertionError(f"the command did not finish; the terminal shows:\n{shown}")
        return process.wait(timeout=10), shown
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()


async def count(session, statement) -> int:
    return (await session.execute(statement)).scalar_one()


async def audit_actions(session) -> list[str]:
    return list((await session.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars())


@pytest.mark.parametrize("command", OPS_COMMANDS)
def test_every_operator_command_explains_itself_with_help(command, capsys):
    # What `manage.py COMMAND --help` prints, without a child process per command.
    load_command_class("events", command).print_help("manage.py", command)
    shown = capsys.readouterr().out
    assert f"usage: manage.py {command}" in shown
    assert {
        "createstaff": "HYPERION_STAFF_PASSWORD", "setrole": "{member,editor,manager,none}",
        "importics": "APPROVED", "exportics": "--base-url", "promotewaitlist": "EVENT_SLUG",
        "purgeusers": "--dry-run", "drawlotteries": "--now",
    }[command] in shown


# createstaff

async def test_createstaff_without_input_creates_an_active_staff_account_with_the_password(session):
    result = manage("createstaff", "--noinput", "--email", "Chief@Etu.Test", "--display-name", "  The  Chief ",
                    env={"HYPERION_STAFF_PASSWORD": "a-long-staff-passphrase"})
    assert result.returncode == 0, result.stderr
    assert "Staff account created for chief@etu.test" in result.stdout
    user = (await session.execute(select(User).where(User.email == "chief@etu.test"))).scalar_one()
    assert (user.is_staff, user.is_active, user.display_name) == (True, True, "The Chief")
    assert check_password("a-long-staff-passphrase", user.password_hash)
    entry = (await session.execute(select(AuditEntry))).scalar_one()
    assert (entry.action, entry.object_id, entry.actor_id) == ("user.staff_created", user.id, None)


async def test_createstaff_promotes_an_existing_account_only_when_asked_and_only_once(session):
    user_id = await factories.user(email="alice@etu.test", password_hash="old-hash")
    refused = manage("createstaff", "--noinput", "--email", "alice@etu.test", "--display-name", "Alice",
                     env={"HYPERION_STAFF_PASSWORD": "a-long-staff-passphrase"})
    assert_fails_clearly(refused, "already exists", "--promote")
    staff_and_password = select(User.is_staff, User.password_hash).where(User.id == user_id)
    assert (await session.execute(staff_and_password)).one() == (False, "old-hash")

    promoted = manage("createstaff", "--noinput", "--email", "ALICE@etu.test", "--promote")
    assert promoted.returncode == 0, promoted.stderr
    assert "is staff now" in promoted.stdout
    # Keeps the password its owner chose.
    assert (await session.execute(staff_and_password)).one() == (True, "old-hash")

    again = manage("createstaff", "--noinput", "--email", "alice@etu.test", "--promote")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert await audit_actions(session) == ["user.staff_promoted"]
    assert await count(session, select(func.count(User.id))) == 1


async def test_createstaff_refuses_bad_input_clearly_and_creates_nothing(session):
    password = {"HYPERION_STAFF_PASSWORD": "a-long-staff-passphrase"}
    weak, no_password, no_name, no_terminal = run_each(
        partial(manage, "createstaff", "--noinput", "--email", "a@etu.test", "--display-name", "Al",
                env={"HYPERION_STAFF_PASSWORD": "1234567890"}),
        partial(manage, "createstaff", "--noinput", "--email", "a@etu.test", "--display-name", "Al",
                env={"HYPERION_STAFF_PASSWORD": ""}),
        partial(manage, "createstaff", "--noinput", "--email", "a@etu.test", env=password),
        # Interactive with the answers piped in: refused, there is no terminal to ask the password on.
        partial(manage, "createstaff", stdin="a@etu.test\nAl\na-long-staff-passphrase\n"),
    )
    assert_fails_clearly(weak, "too common", "entirely numeric")
    assert_fails_clearly(no_password, "HYPERION_STAFF_PASSWORD")
    assert_fails_clearly(no_name, "--display-name is required")
    assert_fails_clearly(no_terminal, "terminal", "--noinput")
    with pytest.raises(CommandError, match="'not-an-address' is not a valid e-mail address"):
        call_command("createstaff", "--noinput", "--email", "not-an-address", "--display-name", "Al")
    bidi = manage("createstaff", "--noinput", "--email", "a@etu.test", "--display-name", "Équipe \u202eFFATS",
                  env=password)
    assert_fails_clearly(bidi, "invisible control characters")  # the forms' rule for names
    with pytest.raises(CommandError, match="--email is required"):
        call_command("createstaff", "--noinput")
    assert await count(session, select(func.count(User.id))) == 0


async def test_createstaff_asks_on_a_terminal_until_every_answer_is_right_and_never_echoes_the_password(session):
    await factories.user(email="taken@etu.test")
    code, shown = manage_on_terminal("createstaff", answers=[
        ("E-mail address: ", "not-an-address"),
        ("E-mail address: ", "taken@etu.test"),
        ("E-mail address: ", "Boss@Etu.test"),
        ("Display name: ", "B"),
        ("Display name: ", "The Boss"),
        ("Password: ", "first-try-passphrase"),
        ("Password (again): ", "second-try-passphrase"),
        ("Password: ", "12345678901"),
        ("Password (again): ", "12345678901"),
        ("Password: ", "the-right-passphrase"),
        ("Password (again): ", "the-right-passphrase"),
    ])
    assert code == 0, shown
    for complaint in ("not a valid e-mail address", "already exists", "at least 2 characters",
                      "the two passwords differ", "entirely numeric", "Staff account created for boss@etu.test"):
        assert complaint in shown, shown
    for password in ("first-try-passphrase", "second-try-passphrase", "12345678901", "the-right-passphrase"):
        assert password not in shown
    user = (await session.execute(select(User).where(User.email == "boss@etu.test"))).scalar_one()
    assert user.is_staff and user.display_name == "The Boss"
    assert check_password("the-right-passphrase", user.password_hash)


# setrole

async def test_setrole_gives_changes_and_removes_a_role(session):
    # raw: the test counts every audit entry, and the services would add their own.
    association_id = await support.association_create(slug="bde", name="BDE")
    user_id = await factories.user(email="alice@etu.test")

    editor = manage("setrole", "Alice@etu.test", "bde", "editor")
    assert editor.returncode == 0, editor.stderr
    assert "alice@etu.test is editor of BDE (bde)" in editor.stdout
    membership = select(Membership.role).where(Membership.user_id == user_id,
                                               Membership.association_id == association_id)
    assert (await session.execute(membership)).scalar_one() == Role.EDITOR
    assert manage("setrole", "alice@etu.test", "bde", "manager").returncode == 0
    assert (await session.execute(membership)).scalar_one() == Role.MANAGER
    removed = manage("setrole", "alice@etu.test", "bde", "none")
    assert removed.returncode == 0 and "no role" in removed.stdout
    assert (await session.execute(membership)).scalar_one_or_none() is None
    assert await audit_actions(session) == ["membership.role_set", "membership.role_set", "membership.removed"]


async def test_setrole_names_what_is_missing(session):
    await factories.association(slug="bde")
    await factories.user(email="alice@etu.test")
    no_association, no_account = run_each(
        partial(manage, "setrole", "alice@etu.test", "nope", "editor"),
        partial(manage, "setrole", "bob@etu.test", "bde", "editor"),
    )
    assert_fails_clearly(no_association, "no association with the slug 'nope'")
    assert_fails_clearly(no_account, "no account with the e-mail address 'bob@etu.test'")
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("setrole", "alice@etu.test", "bde", "admin")
    assert await count(session, select(func.count(Membership.id))) == 0


# importics

CALENDAR = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Tests//Hand written//EN
BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:STANDARD
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:ski@example.org
DTSTART;VALUE=DATE:20270605
DTEND;VALUE=DATE:20270607
SUMMARY:Week-end ski
DESCRIPTION:Two days\\, two nights.\\nBring gloves.
LOCATION:Chamonix
CATEGORIES:Voyage
END:VEVENT
BEGIN:VEVENT
UID:talk@example.org
DTSTART;TZID=America/New_York:20270310T180000
DTEND;TZID=America/New_York:20270310T200000
SUMMARY:Remote talk
CATEGORIES:CONFERENCE
END:VEVENT
BEGIN:VEVENT
UID:party@example.org
DTSTART:20270715T200000
DURATION:PT3H
SUMMARY:Summer party
CATEGORIES:Something else
END:VEVENT
BEGIN:VEVENT
UID:workshop@example.org
DTSTART:20270401T100000Z
DTEND:20270401T120000Z
SUMMARY:Cancelled workshop
STATUS:CANCELLED
CATEGORIES:workshop
END:VEVENT
BEGIN:VEVENT
DTSTART:20270402T100000Z
SUMMARY:Nameless UID
END:VEVENT
BEGIN:VEVENT
UID:nostart@example.org
SUMMARY:No start
END:VEVENT
BEGIN:VEVENT
UID:backwards@example.org
DTSTART:20270403T100000Z
DTEND:20270403T090000Z
SUMMARY:Backwards
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def events_by_uid(session) -> dict[str, Event]:
    statement = select(Event).execution_options(populate_existing=True)  # fresh rows after each command
    return {event.ical_uid: event for event in (await session.execute(statement)).scalars()}


async def test_importics_creates_events_then_updates_only_what_changed(session, tmp_path):
    association_id = await factories.association(slug="bde")
    calendar = tmp_path / "bde.ics"
    calendar.write_text(CALENDAR)

    first = manage("importics", str(calendar), "--association", "bde")
    assert first.returncode == 0, first.stderr
    assert "created 4, updated 0, skipped 3" in first.stdout
    for warning in ('"Nameless UID"): no UID', "UID nostart@example.org): no DTSTART",
                    '"Backwards", UID backwards@example.org): DTEND is before DTSTART'):
        assert warning in first.stderr
    events = await events_by_uid(session)
    assert set(events) == {"ski@example.org", "talk@example.org", "party@example.org", "workshop@example.org"}
    ski, talk, party, workshop = (events[f"{name}@example.org"] for name in ("ski", "talk", "party", "workshop"))
    # All day: from local midnight (Paris, summer: UTC+2) to the midnight after the last day.
    assert (ski.starts_at, ski.ends_at, ski.all_day) == (utc(2027, 6, 4, 22), utc(2027, 6, 6, 22), True)
    assert (ski.category, ski.location, ski.description) == ("trip", "Chamonix", "Two days, two nights.\nBring gloves.")
    # A TZID: New York is UTC-5 before its change to summer time on 14 March 2027.
    assert (talk.starts_at, talk.ends_at, talk.all_day, talk.category) == (
        utc(2027, 3, 10, 23), utc(2027, 3, 11, 1), False, "conference")
    # Floating: Paris time.
    assert (party.starts_at, party.ends_at, party.category) == (utc(2027, 7, 15, 18), utc(2027, 7, 15, 21), "other")
    assert workshop.status == EventStatus.CANCELLED
    assert {ski.status, talk.status, party.status} == {EventStatus.APPROVED}
    assert all(event.association_id == association_id and event.sequence == 0 for event in events.values())
    assert ski.slug == "week-end-ski-2027-06-05"  # the local date, not the UTC one
    talk_slug, talk_updated_at = talk.slug, talk.updated_at

    calendar.write_text(CALENDAR.replace("SUMMARY:Remote talk", "SUMMARY:Remote talk (new speaker)"))
    second = manage("importics", str(calendar), "--association", "bde")
    assert second.returncode == 0, second.stderr
    assert "created 0, updated 1, skipped 6" in second.stdout
    events_after = await events_by_uid(session)
    assert len(events_after) == 4
    talk_after = events_after["talk@example.org"]
    assert (talk_after.title, talk_after.sequence, talk_after.slug) == ("Remote talk (new speaker)", 1, talk_slug)
    assert talk_after.updated_at > talk_updated_at
    assert events_after["ski@example.org"].sequence == 0
    assert (await audit_actions(session)).count("event.imported") == 4
    assert (await audit_actions(session))[-1] == "event.updated"


async def test_importics_drafts_on_request_and_leaves_other_associations_events_alone(session, tmp_path):
    await factories.association(slug="bde")
    await factories.association(slug="club", name="Club")
    calendar = tmp_path / "bde.ics"
    calendar.write_text(CALENDAR)
    assert manage("importics", str(calendar), "--association", "bde").returncode == 0
    only_new = tmp_path / "club.ics"
    only_new.write_text(CALENDAR.replace("UID:party@example.org", "UID:club-party@example.org"))

    result = manage("importics", str(only_new), "--association", "club", "--draft")
    assert result.returncode == 0, result.stderr
    assert "created 1, updated 0, skipped 6" in result.stdout
    assert "UID talk@example.org belongs to an event of another association" in result.stderr
    events = await events_by_uid(session)
    assert events["club-party@example.org"].status == EventStatus.DRAFT
    assert events["talk@example.org"].title == "Remote talk"


async def test_importics_refuses_what_it_cannot_read_and_changes_nothing(session, tmp_path):
    await factories.association(slug="bde")
    calendar = tmp_path / "bde.ics"
    calendar.write_text(CALENDAR)
    unknown_association = manage("importics", str(calendar), "--association", "nope")
    assert_fails_clearly(unknown_association, "no association with the slug 'nope'")
    not_a_calendar = tmp_path / "notes.txt"
    not_a_calendar.write_text("Just some notes,\nnot a calendar.\n")
    with pytest.raises(CommandError, match="notes.txt is not an iCalendar file"):
        call_command("importics", str(not_a_calendar), "--association", "bde")
    with pytest.raises(CommandError, match="cannot read .*missing.ics: No such file"):
        call_command("importics", str(tmp_path / "missing.ics"), "--association", "bde")
    assert await count(session, select(func.count(Event.id))) == 0


def test_ical_parsing_reads_labels_in_any_language_and_names_what_it_leaves_out():
    from events.localtime import site_zone
    from events.ops.ical_import import NotICalendar, calendar_parse

    def vevent(uid: str, *lines: str) -> str:
        return "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", f"SUMMARY:{uid} title", *lines, "END:VEVENT"])

    parsed = calendar_parse("\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Tests//EN",
        vevent("soiree", "DTSTART:20271001T200000", "CATEGORIES:Association,soiree"),
        vevent("games", "DTSTART;VALUE=DATE:20271002", "DTEND;VALUE=DATE:20271002", "CATEGORIES:Games"),
        vevent("weekly", "DTSTART:20271003T120000Z", "RRULE:FREQ=WEEKLY;COUNT=4"),
        vevent("soiree", "DTSTART:20271004T200000"),
        vevent("elsewhere", "DTSTART;TZID=Nowhere/Town:20271005T100000"),
        "END:VCALENDAR", "",
    ]).encode(), zone=site_zone())
    events = {event.uid: event for event in parsed.events}
    assert events["soiree"].category == "party"  # "Soirée", French label, accent-free
    assert events["games"].category == "gaming"  # English label
    # An all-day event whose DTEND equals its DTSTART lasts that day.
    assert (events["games"].starts_at, events["games"].ends_at) == (utc(2027, 10, 1, 22), utc(2027, 10, 2, 22))
    assert events["elsewhere"].starts_at == utc(2027, 10, 5, 8)  # unknown zone: taken in Paris time
    assert parsed.skipped == 2
    assert any("weekly" in warning and "recurring" in warning for warning in parsed.warnings)
    assert any("#4" in warning and "appears earlier" in warning for warning in parsed.warnings)
    assert any("unknown time zone 'Nowhere/Town'" in warning for warning in parsed.warnings)
    with pytest.raises(NotICalendar):
        calendar_parse(b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n", zone=site_zone())


# exportics

async def test_exportics_writes_published_events_that_import_back_into_another_association(session, tmp_path):
    bde = await factories.association(slug="bde", name="BDE")
    club = await factories.association(slug="club", name="Club")
    starts = utc(2027, 3, 12, 19)  # whole seconds, as iCalendar writes them
    ids = {
        "gala": await factories.event(association_id=bde, slug="gala", title="Gala", starts_at=starts,
                                           description="Black tie", location="Hall A"),
        "past": await factories.event(association_id=bde, slug="past", title="Old party",
                                           starts_at=utc(2020, 1, 10, 20)),
        "ski": await factories.event(association_id=bde, slug="ski", title="Ski", starts_at=utc(2027, 1, 8, 23),
                                          hours=48, all_day=True, category="trip"),
        "called-off": await factories.event(association_id=bde, slug="called-off", title="Called off",
                                                 starts_at=starts, status=EventStatus.CANCELLED),
        "draft": await factories.event(association_id=bde, slug="draft", title="Draft", starts_at=starts,
                                            status=EventStatus.DRAFT),
        "club": await factories.event(association_id=club, slug="club-night", title="Club night",
                                           starts_at=starts),
    }
    exported = tmp_path / "bde.ics"
    everything, bde_only = run_each(
        partial(manage, "exportics", "--base-url", "https://events.example.org/"),
        partial(manage, "exportics", "--association", "bde", "--output", str(exported)),
    )
    assert everything.returncode == 0, everything.stderr
    assert "Exported 5 events." in everything.stderr
    calendar = icalendar.Calendar.from_ical(everything.stdout)
    assert {str(vevent["UID"]) for vevent in calendar.events} == {
        event_uid(ids[name]) for name in ("gala", "past", "ski", "called-off", "club")}
    gala = next(vevent for vevent in calendar.events if str(vevent["UID"]) == event_uid(ids["gala"]))
    assert str(gala["URL"]) == "https://events.example.org/events/gala/"
    assert bde_only.returncode == 0, bde_only.stderr
    assert f"Exported 4 events to {exported}" in bde_only.stdout

    mirror = await factories.association(slug="mirror", name="Mirror")
    first, second = (manage("importics", str(exported), "--association", "mirror") for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert "created 4, updated 0, skipped 0" in first.stdout
    assert "created 0, updated 0, skipped 4" in second.stdout
    columns = (Event.title, Event.description, Event.location, Event.category, Event.starts_at, Event.ends_at,
               Event.all_day, Event.status)
    originals = (await session.execute(select(*columns).where(
        Event.association_id == bde, Event.status != EventStatus.DRAFT).order_by(Event.starts_at, Event.title))).all()
    copies = (await session.execute(select(*columns).where(Event.association_id == mirror)
                                    .order_by(Event.starts_at, Event.title))).all()
    assert copies == originals


async def test_exportics_links_to_the_sites_address_by_default(session):
    bde = await factories.association(slug="bde", name="BDE")
    await factories.event(association_id=bde, slug="gala", title="Gala", starts_at=utc(2027, 3, 12, 19))
    exported = manage("exportics", env={"SITE_URL": "https://bde.example.org"})
    assert exported.returncode == 0, exported.stderr
    (gala,) = icalendar.Calendar.from_ical(exported.stdout).events
    assert str(gala["URL"]) == "https://bde.example.org/events/gala/"


async def test_exportics_names_what_is_wrong(session, tmp_path):
    unknown, nowhere = run_each(
        partial(manage, "exportics", "--association", "nope"),
        partial(manage, "exportics", "--output", str(tmp_path / "missing-folder" / "events.ics")),
    )
    assert_fails_clearly(unknown, "no association with the slug 'nope'")
    assert unknown.stdout == ""
    assert_fails_clearly(nowhere, "cannot write", "No such file or directory")
    with pytest.raises(CommandError, match="--base-url must be an http"):
        call_command("exportics", "--base-url", "events.example.org")


# promotewaitlist

async def test_promotewaitlist_fills_freed_seats_in_order_once(session):
    association_id = await factories.association()
    event_id = await factories.event(association_id=association_id, slug="gala", capacity=2)
    past_id = await factories.event(association_id=association_id, slug="past", capacity=1,
                                         starts_at=utcnow() - timedelta(days=3))
    draft_id = await factories.event(association_id=association_id, slug="draft", capacity=1,
                                          status=EventStatus.DRAFT)
    users = [await factories.user(email=f"student{number}@etu.test") for number in range(5)]
    for user_id in users:  # two confirmed, three in line
        await factories.registration(event_id=event_id, user_id=user_id)
    for other_id in (past_id, draft_id):  # raw: a past and a draft event, which registration refuses
        await support.registration_create_raw(event_id=other_id, user_id=users[0],
                                              status=RegistrationStatus.WAITLISTED)
    # raw: two more seats, as a staff edit would give, but without the promotion the edit makes itself: filling
    # them is the command's work.
    async with db.write_session() as writer, writer.begin():
        await writer.execute(update(Event).where(Event.id.in_([event_id, past_id, draft_id])).values(capacity=4))

    first = manage("promotewaitlist")
    assert first.returncode == 0, first.stderr
    assert "[1/1] gala: 2 promoted" in first.stdout  # the past and the draft events are not touched
    statuses = dict((await session.execute(
        select(Registration.user_id, Registration.status).where(Registration.event_id == event_id))).all())
    assert [statuses[user_id] for user_id in users] == [RegistrationStatus.CONFIRMED] * 4 + [
        RegistrationStatus.WAITLISTED]
    again, one, draft, unknown = run_each(
        partial(manage, "promotewaitlist"), partial(manage, "promotewaitlist", "past"),
        partial(manage, "promotewaitlist", "draft"), partial(manage, "promotewaitlist", "nope"),
    )
    assert again.returncode == 0 and "gala: 0 promoted" in again.stdout
    assert one.returncode == 0 and "past: 1 promoted" in one.stdout  # named, a past event is served too
    assert draft.returncode == 0 and "not approved: nobody promoted" in draft.stdout
    assert_fails_clearly(unknown, "no event with the slug 'nope'")
    assert await count(session, select(func.count(Registration.id)).where(
        Registration.status == RegistrationStatus.CONFIRMED)) == 5


# purgeusers

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


async def account(*, email: str, last_login_at: datetime | None, created_at: datetime = LONG_AGO,
                  is_staff: bool = False, **columns) -> int:
    # raw: an account made and last seen years ago (the services stamp now, only a log-in sets last_login_at).
    async with db.write_session() as writer, writer.begin():
        return (await writer.execute(insert(User).returning(User.id), {
            "email": email, "display_name": email.split("@")[0].title(), "password_hash": "md5$x$y",
            "is_staff": is_staff, "created_at": created_at, "last_login_at": last_login_at, **columns,
        })).scalar_one()


async def test_purgeusers_anonymises_inactive_accounts_and_keeps_their_registrations(session):
    association_id = await factories.association()
    past_event = await factories.event(association_id=association_id, slug="past",
                                            starts_at=utc(2021, 5, 1, 20))
    coming_event = await factories.event(association_id=association_id, slug="coming")
    gone = await account(email="gone@etu.test", last_login_at=utc(2021, 6, 1), promo=2022, feed_token_hash="0" * 64)
    never = await account(email="never@etu.test", last_login_at=None, created_at=utc(2021, 1, 1))
    kept = {
        "staff": await account(email="staff@etu.test", last_login_at=utc(2021, 6, 1), is_staff=True),
        "recent": await account(email="recent@etu.test", last_login_at=utcnow() - timedelta(days=2)),
        "already": await account(email="deleted-999@invalid.hyperion", last_login_at=None,
                                 anonymised_at=utc(2022, 1, 1)),
        "coming": await account(email="coming@etu.test", last_login_at=utc(2021, 6, 1)),
    }
    await support.registration_create_raw(event_id=past_event, user_id=gone)  # raw: registration refuses a past event
    await factories.registration(event_id=coming_event, user_id=kept["coming"])
    await factories.member(association_id=association_id, user_id=gone, role=Role.MANAGER)
    # raw: a log-in session and a throttle from the account's last days in 2021 (the services stamp now).
    async with db.write_session() as writer, writer.begin():
        await writer.execute(insert(AuthSession), {"token_hash": "a" * 64, "user_id": gone,
                                                   "expires_at": utc(2021, 6, 15)})
        await writer.execute(insert(Throttle), {"scope": "login", "subject": "gone@etu.test", "address": "192.0.2.1",
                                                "attempts": 3, "next_allowed_at": utc(2021, 6, 15),
                                                "updated_at": utc(2021, 6, 15)})

    dry = manage("purgeusers", "--inactive-since", "2023-01-01", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would anonymise 2 account(s)" in dry.stdout
    assert (await session.execute(select(User.email).where(User.id == gone))).scalar_one() == "gone@etu.test"

    purge = manage("purgeusers", "--inactive-since", "2023-01-01")
    assert purge.returncode == 0, purge.stderr
    assert "Anonymised 2 account(s) inactive since 2023-01-01" in purge.stdout
    rows = {row.id: row for row in (await session.execute(select(
        User.id, User.email, User.display_name, User.password_hash, User.promo, User.feed_token_hash, User.is_active,
        User.anonymised_at))).all()}
    for user_id in (gone, never):
        row = rows[user_id]
        assert (row.email, row.display_name, row.password_hash, row.promo, row.feed_token_hash, row.is_active) == (
            f"deleted-{user_id}@invalid.hyperion", "Ancien membre", "!", None, None, False)
        assert row.anonymised_at is not None
    assert all(rows[user_id].anonymised_at is None for name, user_id in kept.items() if name != "already")
    assert rows[kept["coming"]].email == "coming@etu.test"
    assert await count(session, select(func.count(Membership.id))) == 0
    assert await count(session, select(func.count(AuthSession.token_hash))) == 0
    assert await count(session, select(func.count()).select_from(Throttle)) == 0
    # The past event still counts its attendee.
    assert await count(session, select(func.count(Registration.id)).where(Registration.event_id == past_event)) == 1
    entry = (await session.execute(select(AuditEntry).where(AuditEntry.action == "users.purged"))).scalar_one()
    assert entry.changes["count"] == 2 and "gone@etu.test" not in str(entry.changes)

    again = manage("purgeusers", "--inactive-since", "2023-01-01")
    assert again.returncode == 0 and "Anonymised 0 account(s)" in again.stdout


def test_purgeusers_refuses_a_date_that_is_not_one_or_is_to_come():
    for value in ("2023-02-30", "01/02/2023", "yesterday"):
        with pytest.raises(CommandError, match="must be a date as YYYY-MM-DD"):
            call_command("purgeusers", "--inactive-since", value)
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    with pytest.raises(CommandError, match="is in the future"):
        call_command("purgeusers", "--inactive-since", tomorrow)
    result = manage("purgeusers", "--inactive-since", "2023-13-01")
    assert_fails_clearly(result, "must be a date as YYYY-MM-DD, not '2023-13-01'")


# drawlotteries

async def test_drawlotteries_draws_the_due_lotteries_once_and_closes_one_early_when_asked(session):
    due = await factories.lottery_event(slug="due", capacity=1)
    await factories.lottery_event(slug="early", capacity=1)
    alice = await factories.user(email="alice@etu.test")
    bob = await factories.user(email="bob@etu.test")
    for slug in ("due", "early"):
        await factories.lottery_entry(slug, alice)
        await factories.lottery_entry(slug, bob)
    await factories.lottery_window_close(due)
    first = manage("drawlotteries")
    assert first.returncode == 0, first.stderr
    assert "due: 2 entries, 1 confirmed, 1 waitlisted (seed " in first.stdout
    assert "1 lottery draw(s)." in first.stdout
    assert "0 lottery draw(s)." in manage("drawlotteries").stdout  # drawn once
    still_open = manage("drawlotteries", "early")
    assert "nothing to draw" in still_open.stdout
    early = manage("drawlotteries", "early", "--now")
    assert "early: 2 entries, 1 confirmed, 1 waitlisted" in early.stdout
    unknown = manage("drawlotteries", "nope")
    assert unknown.returncode != 0 and "no event with the slug 'nope'" in unknown.stderr
    assert (await audit_actions(session)).count("lottery.drawn") == 2
