"""A page reads everything it shows through one pooled connection per request, however many queries that
takes: several connections per request multiply the pool's waits under load. Counted on the pool's
checkouts, during one request through the test client.

A request that carries a session cookie takes one more connection before the view runs, the middleware's
lookup of the user (SESSION_LOOKUP below), unless the process remembers the session
(events/accounts/session_cache.py): each count here starts with that memory empty, the worst case."""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.test import AsyncClient
from django.urls import reverse

from events.accounts.session_cache import session_cache
from events.models import EventStatus, Role, utcnow
from tests import factories, support
from tests.registration.test_questions import answer, gala_with_questions, student_client

SESSION_LOOKUP = 1  # the middleware's one query for the user behind the session cookie


@contextlib.contextmanager
def pool_checkouts():
    """The connections taken from the pool while the block runs, each request's session lookup included."""
    session_cache.clear()
    with support.engine_events("checkout") as taken:
        yield taken


async def client_for(user_id: int | None = None) -> AsyncClient:
    client = AsyncClient()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    if user_id is not None:
        await support.login(client, user_id)
    return client


async def member_create(association_id: int, role: Role, email: str) -> int:
    user_id = await factories.user(email=email, display_name=email.split("@")[0].title())
    await factories.member(association_id=association_id, user_id=user_id, role=role)
    return user_id


async def test_the_event_page_reads_through_one_connection():
    association = await factories.association()
    await factories.event(association_id=association, slug="gala", title="Gala")
    await factories.event(association_id=association, slug="brouillon", title="Brouillon",
                               status=EventStatus.DRAFT)
    editor = await member_create(association, Role.EDITOR, "eric@etu.test")
    visitor, editor_client = await client_for(), await client_for(editor)

    with pool_checkouts() as taken:
        response = await visitor.get(reverse("event_detail", args=["gala"]))
    assert response.status_code == 200 and "Gala" in response.text
    assert len(taken) == 1

    # An unpublished event asks two questions (the event, then the reader's roles): still one connection.
    with pool_checkouts() as taken:
        response = await editor_client.get(reverse("event_detail", args=["brouillon"]))
    assert response.status_code == 200 and "Brouillon" in response.text
    assert len(taken) == SESSION_LOOKUP + 1


async def test_the_staff_event_page_reads_actor_event_and_history_through_one_connection():
    association = await factories.association()
    event_id = await factories.event(association_id=association, title="Gala", status=EventStatus.SUBMITTED,
                                          submitted_at=utcnow())
    editor = await member_create(association, Role.EDITOR, "eric@etu.test")
    client = await client_for(editor)

    with pool_checkouts() as taken:
        response = await client.get(reverse("staff_event", args=[event_id]))
    assert response.status_code == 200 and "Gala" in response.text
    assert len(taken) == SESSION_LOOKUP + 1


async def test_the_attendees_page_reads_through_one_connection_and_a_refused_add_writes_through_one_more():
    association = await factories.association()
    event_id = await factories.event(association_id=association, title="Gala")
    student = await factories.user(email="alice@etu.test", display_name="Alice Martin")
    await factories.registration(event_id=event_id, user_id=student)
    manager = await member_create(association, Role.MANAGER, "alice.responsable@etu.test")
    client = await client_for(manager)
    page = reverse("staff_attendees", args=[event_id])

    with pool_checkouts() as taken:
        response = await client.get(page)
    assert response.status_code == 200 and "Alice Martin" in response.text
    assert len(taken) == SESSION_LOOKUP + 1

    # The page shown again with the refusal: its reads, then the write that refused, nothing more.
    with pool_checkouts() as taken:
        response = await client.post(page, {"email": "nobody@etu.test"})
    assert response.status_code == 400 and "Alice Martin" in response.text
    assert len(taken) == SESSION_LOOKUP + 1 + 1


async def test_the_dashboard_and_the_events_list_read_through_one_connection():
    association = await factories.association()
    await factories.event(association_id=association, title="Gala")
    staff = await factories.user(email="sam@staff.test", display_name="Sam Staff", is_staff=True)
    client = await client_for(staff)

    for name in ("staff_dashboard", "staff_events"):
        with pool_checkouts() as taken:
            response = await client.get(reverse(name))
        assert response.status_code == 200
        assert len(taken) == SESSION_LOOKUP + 1, name


async def test_a_registered_students_event_page_with_questions_reads_their_answers_on_the_same_connection():
    _people, _event_id, sizes, _diet, _guest = await gala_with_questions()
    client, _alice = await student_client()
    assert (await client.post("/events/gala/register/", answer(sizes, "M"))).status_code == 302
    for _ in range(2):  # read from the database, then the event from this process's memory
        with pool_checkouts() as taken:
            response = await client.get(reverse("event_detail", args=["gala"]), headers={"Accept-Language": "en"})
        assert response.status_code == 200 and "Your answers to the organisers" in response.text
        assert len(taken) == SESSION_LOOKUP + 1
