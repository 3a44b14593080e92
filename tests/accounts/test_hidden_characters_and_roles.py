"""Nobody passes for someone else: imported titles, places and descriptions keep the rule on invisible characters,
and staff status shows as a badge rendered from data, never from a name."""

from __future__ import annotations

from events.localtime import site_zone
from events.ops.ical_import import calendar_parse
from tests import factories, support


def test_importics_refuses_events_with_bidi_or_control_characters():
    def vevent(uid: str, *lines: str) -> str:
        return "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", "DTSTART:20271001T200000", *lines, "END:VEVENT"])

    parsed = calendar_parse("\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Tests//EN",
        vevent("clean", "SUMMARY:Gala", "DESCRIPTION:Line one\\nline two", "LOCATION:Grand Hall"),
        vevent("title", "SUMMARY:Gala \u202egnp.exe"),
        vevent("place", "SUMMARY:Gala", "LOCATION:Hall\u2066B\u2069"),
        vevent("text", "SUMMARY:Gala", "DESCRIPTION:Bell\x07"),
        "END:VCALENDAR", "",
    ]).encode(), zone=site_zone())
    assert [event.uid for event in parsed.events] == ["clean"]
    assert parsed.skipped == 3
    assert sum("invisible control or bidirectional characters" in warning for warning in parsed.warnings) == 3


async def test_staff_is_a_badge_from_data_not_a_name(async_client):
    impostor = await factories.user(email="eve@etu.test", display_name="Équipe BDE (staff)")
    await support.login(async_client, impostor)
    page = (await async_client.get("/")).text
    assert "Équipe BDE (staff)" in page and 'class="role-badge"' not in page
    staff = await factories.user(email="staff@etu.test", display_name="Équipe BDE", is_staff=True)
    await support.login(async_client, staff)
    assert 'class="role-badge"' in (await async_client.get("/")).text


async def test_attendee_lists_and_the_audit_log_badge_staff_from_data(async_client):
    from events.audit import audit_log
    from hyperion import db

    association_id = await factories.association()
    event_id = await factories.event(association_id=association_id, slug="gala")
    impostor = await factories.user(email="eve@etu.test", display_name="Équipe BDE (staff)")
    staff = await factories.user(email="staff@etu.test", display_name="Vraie Équipe", is_staff=True)
    for user_id in (impostor, staff):
        await factories.registration(event_id=event_id, user_id=user_id)
    async with db.write_session() as session, session.begin():
        for actor_id in (impostor, staff):
            await audit_log(session, actor_id=actor_id, action="event.updated", object_type="event",
                            object_id=event_id, changes={})
    await support.login(async_client, staff)
    for path in (f"/manage/events/{event_id}/attendees/", "/manage/audit/"):
        page = (await async_client.get(path)).text
        assert page.count('class="role-badge"') == 2, path  # the header's and the real staff's row
        impostor_cell = page.split("Équipe BDE (staff)")[1].split("</td>")[0]
        assert "role-badge" not in impostor_cell
        assert "role-badge" in page.split("Vraie Équipe")[1].split("</td>")[0]
