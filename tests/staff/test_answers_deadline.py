"""Until when answers to an event's questions may change (AnswersDeadlineForm on the questions page): a date
typed wrong, or a year out of range, is a message on the page with status 400 (never a 500), and nothing is
written; a sane date is saved with its audit entry."""

from __future__ import annotations

import pytest
from django.test import AsyncClient

from events.models import EventStatus
from tests import factories
from tests.staff.pages import PARIS, after_redirect, audit_all, client_for, event_row, paris, team, url


async def deadline_post(client: AsyncClient, event_id: int, typed: str):
    return await client.post(url("staff_event_questions", event_id), {"action": "deadline", "answers_close_at": typed})


@pytest.mark.parametrize(("typed", "told"), [
    ("99999-01-01T10:00", "Enter a valid date/time."),
    ("0001-01-01T00:00", "Choose a date between 2000 and 2100."),
    ("1999-12-31T23:59", "Choose a date between 2000 and 2100."),
    ("2101-01-01T00:00", "Choose a date between 2000 and 2100."),
    ("9999-12-31T23:59", "Choose a date between 2000 and 2100."),
    ("2030-02-30T10:00", "Enter a valid date/time."),
], ids=["five-digit-year", "year-one", "before-2000", "after-2100", "year-9999", "no-such-day"])
async def test_a_deadline_out_of_range_is_a_message_with_400_and_nothing_is_written(session, typed, told):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", status=EventStatus.DRAFT)
    editor = await client_for(people.editor)
    editor.raise_request_exception = False  # a 500 is a wrong answer to report, not an exception
    response = await deadline_post(editor, event_id, typed)
    assert response.status_code == 400 and told in response.text, (response.status_code, typed)
    assert (await event_row(session, event_id)).answers_close_at is None
    assert await audit_all(session, "event.updated") == []


async def test_a_sane_deadline_is_saved_with_its_audit_entry(session):
    people = await team()
    event_id = await factories.event(association_id=people.bde, slug="gala", status=EventStatus.DRAFT)
    editor = await client_for(people.editor)
    page = await after_redirect(editor, await deadline_post(editor, event_id, "2030-01-01T10:00"))
    assert "Saved." in page
    assert (await event_row(session, event_id)).answers_close_at == paris(2030, 1, 1, 10).astimezone(PARIS)
    [entry] = await audit_all(session, "event.updated")
    assert set(entry.changes) == {"answers_close_at"}
