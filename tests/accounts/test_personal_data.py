"""Download my data: a student gets, as a JSON file, everything the site holds about them (account,
memberships, registrations, messages), nothing about anyone else, and no secret (password or token hash)."""

from __future__ import annotations

import json

from django.test import AsyncClient

from events.models import Role
from tests import factories, support


async def test_a_student_downloads_their_own_data_and_nothing_else():
    organiser = await factories.association(slug="bde", name="BDE")
    event_id = await factories.event(association_id=organiser, slug="gala", title="Gala", capacity=1,
                                     location="Grand Hall")
    other_event = await factories.event(association_id=organiser, slug="quiz", title="Quiz")
    lea = await factories.user(email="lea@etu.test", display_name="Léa", promo=2028,
                               password_hash="pbkdf2_sha256$1$salt$hash-of-the-password")  # noqa: S106
    someone = await factories.user(email="someone@etu.test", display_name="Someone")
    await factories.member(association_id=organiser, user_id=lea, role=Role.EDITOR)
    await factories.registration(event_id=event_id, user_id=someone)  # the seat: Léa waits
    await factories.registration(event_id=event_id, user_id=lea)
    await factories.registration(event_id=other_event, user_id=someone)
    response = await (await support.client_as(lea)).get("/account/data.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="hyperion-my-data.json"'
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    data = json.loads(response.content)
    assert data["account"]["email"] == "lea@etu.test" and data["account"]["promo"] == 2028
    assert data["account"]["email_verified"] is True and data["account"]["calendar_feed_enabled"] is False
    assert data["memberships"] == [{"association": "BDE", "association_slug": "bde", "role": "editor",
                                    "since": data["memberships"][0]["since"]}]
    assert [(row["event"], row["status"], row["location"]) for row in data["registrations"]] == [
        ("Gala", "waitlisted", "Grand Hall")]
    assert {row["kind"] for row in data["messages"]} == {"registration.waitlisted"}
    text = response.content.decode()
    assert "hash-of-the-password" not in text and "someone@etu.test" not in text and "Quiz" not in text


async def test_only_a_logged_in_student_gets_data():
    response = await AsyncClient().get("/account/data.json")
    assert response.status_code == 302 and "/account/login/" in response["Location"]
