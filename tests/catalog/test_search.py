"""Every search box follows one rule (events/search.py): case, accents and ligatures ignored, and every word
typed must appear, in any order. Run on both databases."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import AsyncClient
from django.urls import reverse

from events.models import EventStatus, utcnow
from hyperion.db import text_contains_words, text_fold
from tests import factories, support


@pytest.mark.parametrize(("document", "query", "found"), [
    ("Œnologie : les vins du Jura", "oenologie", True),
    ("Œnologie : les vins du Jura", "ŒNOLOGIE", True),
    ("Soirée jeux et crêpes", "crepes jeux", True),
    ("Soirée jeux et crêpes", "jeux crepes soiree", True),
    ("Soirée jeux et crêpes", "crepes poker", False),
    ("Soirée jeux et crêpes", "", True),
])
def test_the_search_rule_ignores_accents_case_and_ligatures_and_wants_every_word(document, query, found):
    assert text_contains_words(document, query) is found
    assert text_fold("Æther Œuvre Soirée") == "aether oeuvre soiree"


async def test_public_search_finds_words_in_any_order_and_ligatures_on_both_databases(async_client):
    association_id = await factories.association()
    soon = utcnow() + timedelta(days=3)
    await factories.event(association_id=association_id, slug="crepes", title="Soirée jeux et crêpes",
                               starts_at=soon)
    await factories.event(association_id=association_id, slug="oeno", title="Œnologie : les vins du Jura",
                               starts_at=soon)
    await factories.event(association_id=association_id, slug="foot", title="Tournoi de foot", starts_at=soon)
    for query, expected in (("crepes jeux", "Soirée jeux et crêpes"), ("oenologie", "Œnologie"),
                            ("Œnologie", "Œnologie")):
        page = (await async_client.get("/", {"q": query})).text
        assert expected in page, query
        assert "Tournoi de foot" not in page, query


async def test_available_seats_only_leaves_out_cancelled_and_full_events(async_client):
    association_id = await factories.association()
    soon = utcnow() + timedelta(days=2)
    await factories.event(association_id=association_id, slug="open", title="Atelier ouvert", starts_at=soon)
    await factories.event(association_id=association_id, slug="off", title="Concert annulé", starts_at=soon,
                               status=EventStatus.CANCELLED)
    await factories.event(association_id=association_id, slug="free", title="Conférence libre",
                               starts_at=soon, capacity=None, status=EventStatus.CANCELLED)
    page = (await async_client.get("/", {"has_seats": "on"})).text
    assert "Atelier ouvert" in page
    assert "Concert annulé" not in page and "Conférence libre" not in page
    # Without the filter the cancelled ones are still listed, marked as such.
    assert "Concert annulé" in (await async_client.get("/")).text


async def _staff_client() -> AsyncClient:
    staff = await factories.user(email="staff@etu.test", display_name="Sam Staff", is_staff=True)
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    await support.login(client, staff)
    return client


async def test_management_searches_ignore_accents_and_want_every_word():
    association_id = await factories.association()
    event_id = await factories.event(association_id=association_id, slug="soiree", title="Soirée d'intégration")
    await factories.event(association_id=association_id, slug="quiz", title="Quiz musical")
    student = await factories.user(email="zoe@etu.test", display_name="Zoé Lefèvre")
    await factories.user(email="bob@etu.test", display_name="Bob Martin")
    await factories.registration(event_id=event_id, user_id=student)
    client = await _staff_client()

    for query in ("soiree", "Soirée", "SOIREE integration"):
        listed = (await client.get(reverse("staff_events"), {"q": query})).text
        assert "Soirée d&#39;intégration" in listed and "Quiz musical" not in listed, query
    assert "Soirée d&#39;intégration" not in (await client.get(reverse("staff_events"), {"q": "soiree quiz"})).text

    for query in ("zoe", "lefevre zoe", "ZOÉ", "zoe@etu"):
        users = (await client.get(reverse("staff_users"), {"q": query})).text
        assert "Zoé Lefèvre" in users and "Bob Martin" not in users, query
        attendees = (await client.get(reverse("staff_attendees", args=[event_id]), {"q": query})).text
        assert "Zoé Lefèvre" in attendees, query
    # Characters that mean something to LIKE are searched for as typed.
    assert "Zoé Lefèvre" not in (await client.get(reverse("staff_users"), {"q": "z%e"})).text
