"""The management area's audit log."""

from __future__ import annotations

import re

from events.models import (
    EventStatus,
    utcnow,
)
from tests import support
from tests.staff.pages import (
    client_for,
    team,
    url,
)

# The audit log.

async def test_audit_page_lists_entries_and_filters_by_action_actor_object_type_and_id(session):
    people = await team()
    # raw: the test counts every audit entry, and the services would add their own.
    first = await support.event_create(association_id=people.bde, slug="gala", title="Gala",
                                       status=EventStatus.SUBMITTED, submitted_at=utcnow())
    second = await support.event_create(association_id=people.bde, slug="quiz", title="Quiz",
                                        status=EventStatus.DRAFT)
    staff, editor = await client_for(people.staff), await client_for(people.editor)
    await staff.post(url("staff_event_approve", first))
    await editor.post(url("staff_event_submit", second))
    await staff.post(url("staff_event_decline", second), {"reason": "Trop court"})
    await (await client_for(people.manager)).post(url("staff_members", people.bde),
                                                  {"email": "student@etu.test", "role": "editor"})

    page = await staff.get(url("staff_audit"))
    assert page.status_code == 200
    for action in ("event.approved", "event.submitted", "event.declined", "membership.role_set"):
        assert f"<code>{action}</code>" in page.text
    assert "submitted → approved" in page.text and "Trop court" in page.text and "Mona Manager" in page.text

    def actions(response) -> list[str]:
        assert response.status_code == 200
        return re.findall(r"<code>([\w.]+)</code>", response.text)

    assert actions(await staff.get(url("staff_audit"), {"action": "event.declined"})) == ["event.declined"]
    assert actions(await staff.get(url("staff_audit"), {"action": "event."})) == [
        "event.declined", "event.submitted", "event.approved"]
    assert actions(await staff.get(url("staff_audit"), {"actor": "editor@etu.test"})) == ["event.submitted"]
    assert actions(await staff.get(url("staff_audit"), {"object_type": "user"})) == ["membership.role_set"]
    assert actions(await staff.get(url("staff_audit"), {"object_type": "event", "object_id": second})) == [
        "event.declined", "event.submitted"]
    assert actions(await staff.get(url("staff_audit"), {"action": "nothing.like.this"})) == []
    assert "Nothing recorded yet." in (await staff.get(url("staff_audit"), {"action": "nope"})).text
    # Nonsense in the filters never breaks the page.
    for junk in ({"object_id": "abc"}, {"object_type": "robot"}, {"actor": "not-an-email"}, {"page": "-3"},
                 {"action": "%_\\"}):
        assert (await staff.get(url("staff_audit"), junk)).status_code == 200
