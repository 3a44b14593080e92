"""Recurring series across both changes of time in Paris (in 2030: clocks go forward on 31 March at 02:00,
back on 27 October at 03:00): every occurrence at the same wall-clock time and as long as the first, and an
occurrence at a time that does not exist, or happens twice, refused in the form with a clear message."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from events.staff.series import OccurrenceTimeInvalid, occurrences
from tests.staff.pages import client_for, event_fields, events_all, paris, team, typed, url

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(("first", "until", "impossible_day"), [
    (paris(2030, 3, 17, 2, 30), "2030-04-07", "2030-03-31"),  # spring forward: 02:30 is skipped
    (paris(2030, 10, 13, 2, 30), "2030-11-03", "2030-10-27"),  # fall back: 02:30 happens twice
], ids=["spring-forward", "fall-back"])
async def test_a_series_with_a_date_at_a_time_that_does_not_exist_or_happens_twice_is_refused_in_the_form(
        session, first, until, impossible_day):
    people = await team()
    editor = await client_for(people.editor)
    response = await editor.post(url("staff_series_new"), {
        **event_fields(people.bde, title="Veillée", starts=first, hours=2), "every_weeks": "1", "until": until})
    assert response.status_code == 400
    assert f"On {impossible_day}, 02:30 does not exist or happens twice" in response.content.decode()
    assert await events_all(session) == []


@pytest.mark.parametrize(("first", "until"), [
    (paris(2030, 3, 16, 22), "2030-04-06"),  # the night of 30 to 31 March loses an hour
    (paris(2030, 10, 12, 22), "2030-11-02"),  # the night of 26 to 27 October gains one
], ids=["spring-forward", "fall-back"])
async def test_a_series_over_a_change_of_time_keeps_its_wall_clock_start_and_its_length(session, first, until):
    people = await team()
    editor = await client_for(people.editor)
    opens = first - timedelta(days=5, hours=10)  # registration opens on the Monday before, at 12:00
    response = await editor.post(url("staff_series_new"), {
        **event_fields(people.bde, title="Nuit du jeu", starts=first, hours=6, registration_opens_at=typed(opens)),
        "every_weeks": "1", "until": until})
    assert response.status_code == 302, response.content.decode()[:500]
    rows = await events_all(session)
    assert len(rows) == 4
    assert {row.starts_at.astimezone(PARIS).strftime("%A %H:%M") for row in rows} == {"Saturday 22:00"}
    assert {row.ends_at - row.starts_at for row in rows} == {timedelta(hours=6)}  # none cut short
    assert {row.registration_opens_at.astimezone(PARIS).strftime("%A %H:%M") for row in rows} == {"Monday 12:00"}


def test_occurrences_are_the_same_wall_clock_time_every_n_weeks():
    found = occurrences(starts_at=paris(2030, 3, 10, 19), ends_at=paris(2030, 3, 10, 21), every_weeks=2,
                        until=date(2030, 4, 21), zone=PARIS)
    assert [occurrence.starts_at.astimezone(PARIS) for occurrence in found] == [
        paris(2030, 3, 10, 19), paris(2030, 3, 24, 19), paris(2030, 4, 7, 19), paris(2030, 4, 21, 19)]
    assert [occurrence.weeks for occurrence in found] == [0, 2, 4, 6]
    with pytest.raises(OccurrenceTimeInvalid):
        occurrences(starts_at=paris(2030, 3, 24, 2, 15), ends_at=paris(2030, 3, 24, 3, 15), every_weeks=1,
                    until=date(2030, 3, 31), zone=PARIS)
