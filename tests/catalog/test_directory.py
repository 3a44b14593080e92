"""The associations' directory at /associations/: every association by name, what it does next and how many
events it has to come (only published ones going ahead), linked to its page; reachable from every page."""

from __future__ import annotations

from datetime import timedelta

from events.models import EventStatus, utcnow
from tests import factories, support


async def test_the_directory_lists_every_association_with_its_next_event():
    bde = await factories.association(slug="bde", name="BDE", description="Le bureau des élèves.")
    ski = await factories.association(slug="ski", name="ski club")
    await factories.association(slug="arts", name="Arts")
    now = utcnow()
    await factories.event(association_id=bde, slug="later", title="Gala", starts_at=now + timedelta(days=9))
    await factories.event(association_id=bde, slug="sooner", title="Quiz", starts_at=now + timedelta(days=2))
    await factories.event(association_id=bde, slug="draft", title="Secret", starts_at=now + timedelta(days=1),
                          status=EventStatus.DRAFT)
    await factories.event(association_id=bde, slug="off", title="Called off", starts_at=now + timedelta(days=1),
                          status=EventStatus.CANCELLED)
    await factories.event(association_id=ski, slug="past", title="Old trip", starts_at=now - timedelta(days=9))
    page = await support.visitor_page("/associations/")
    assert page.index(">Arts<") < page.index(">BDE<") < page.index(">ski club<")  # by name, whatever the case
    bde_card = page[page.index(">BDE<"):page.index(">ski club<")]
    assert 'href="/events/sooner/">Quiz</a>' in bde_card and "2 events to come" in bde_card
    assert "Le bureau des élèves." in bde_card and "Secret" not in page and "Called off" not in page
    ski_card = page[page.index(">ski club<"):]
    assert "No upcoming event for now." in ski_card and "Old trip" not in ski_card
    assert 'href="/associations/bde/"' in page


async def test_every_page_links_to_the_directory_and_an_association_page_back_to_it():
    await factories.association(slug="bde", name="BDE")
    assert 'href="/associations/"' in await support.visitor_page("/")
    assert 'href="/associations/"' in await support.visitor_page("/associations/bde/")
