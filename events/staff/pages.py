"""What each management page reads, on one read session per request: the actor (the user's association
roles), the event or association the address names, and the page's lists.

A page reads everything it shows through one pooled connection, given back before any write: a request
holding a read connection while it waits for a write one could, with every request doing so, leave the
pool empty and all of them waiting.

The loaders say no with domain errors: ``Forbidden`` (the views answer 403), ``EventNotFound`` and
``NotFound`` (404: another association's event or association does not exist for this actor).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from events import errors, localtime
from events.models import EventStatus, RegistrationStatus, utcnow
from events.registration import questions as registration_questions
from events.rules import lifecycle, permissions, visibility
from events.rules.permissions import Actor
from events.staff import mailing, queries, statistics
from events.staff.forms import EventListFilterForm
from events.staff.people_forms import AuditFilterForm
from hyperion import db


async def actor_load(session: db.Reader, user) -> Actor:
    actor = await queries.actor_for(session, user=user)
    if not actor.runs_something:
        raise errors.Forbidden
    return actor


async def actor_only(user) -> Actor:
    """The actor alone, for an action whose service reads the rest inside its own transaction."""
    async with db.read_connection() as connection:
        return await actor_load(connection, user)


async def _event_load(session: AsyncSession, actor: Actor, event_id: int) -> queries.AdminEvent:
    found = await queries.admin_event(session, event_id=event_id)
    if found is None or not permissions.can_see_event_admin(actor, association_id=found.event.association_id):
        raise errors.EventNotFound  # another association's event does not exist for this actor
    return found


@dataclass(slots=True)
class EventPage:
    """An event's management page (or a form about it): the actor, the event and what the page lists."""

    actor: Actor
    found: queries.AdminEvent
    # Empty unless the page asked for them (event_page's arguments).
    history: list[queries.AuditRow] = field(default_factory=list)
    attendees: list[queries.AttendeeRow] = field(default_factory=list)
    choices: list[tuple[int, str]] = field(default_factory=list)
    reach: dict[mailing.Audience, mailing.Reach] = field(default_factory=dict)
    answers: dict[int, dict[str, str]] = field(default_factory=dict)  # each student's answers to the questions
    figures: statistics.Statistics | None = None


async def event_page(user, event_id: int, *, history: bool = False, attendees: str | None = None,
                     choices: bool = False, reach: bool = False, answers: bool = False,
                     figures: bool = False) -> EventPage:
    """The actor and the event, then what the page asked for: its audit history, its attendees (matching
    ``attendees``, a search text, "" for all), the associations its form may pick, how many each group of
    registrants counts for a message, the students' answers to its questions, its statistics (``figures``:
    ``Forbidden`` for whoever may not see them, before they are read)."""
    async with db.read_session() as session:
        actor = await actor_load(session, user)
        found = await _event_load(session, actor, event_id)
        page = EventPage(actor, found)
        if figures:
            if not permissions.can_see_statistics(actor, association_id=found.event.association_id):
                raise errors.Forbidden
            page.figures = await statistics.event_statistics(session, found=found, now=utcnow())
        if history:
            page.history, _more = await queries.audit_entries(session, object_type="event", object_id=event_id)
        if attendees is not None:
            page.attendees = await queries.attendees(session, event_id=event_id, query=attendees)
        if choices:
            page.choices = await queries.associations_choices(session, actor=actor)
        if reach:
            page.reach = await mailing.audience_reach(session, event_id=event_id)
        if answers:
            page.answers = await registration_questions.answers_by_student(session, event_id=event_id)
    return page


_IN_LINE_OR_IN = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED, RegistrationStatus.WAITLISTED,
                  RegistrationStatus.ENTERED)


def registrants_answers(page: EventPage) -> list[dict[str, str]]:
    """The answers of the students registered now (in, offered, waiting or entered in a draw): the counts per
    answer count them, not those who left. Needs the page's ``attendees`` and ``answers``."""
    return [page.answers.get(row.user_id, {}) for row in page.attendees if row.status in _IN_LINE_OR_IN]


def event_actions(actor: Actor, event) -> dict[str, bool]:
    """The buttons of an event's management page that the actor may use, by name."""
    association_id, status = event.association_id, event.status
    return {
        "edit": permissions.can_edit_all_fields(actor, association_id=association_id, status=status)
        or permissions.can_edit_published(actor, association_id=association_id, status=status),
        "submit": lifecycle.can_transition(status, "submit")
        and permissions.can_submit(actor, association_id=association_id),
        "review": lifecycle.can_transition(status, "approve") and permissions.can_review(actor),
        "cancel": lifecycle.can_transition(status, "cancel")
        and permissions.can_cancel(actor, association_id=association_id),
        "delete": permissions.can_delete(actor, association_id=association_id, status=status),
        "attendees": visibility.is_published(status),
        "message": visibility.goes_ahead(status)
        and permissions.can_message_attendees(actor, association_id=association_id),
        "statistics": visibility.is_published(status)
        and permissions.can_see_statistics(actor, association_id=association_id),
        # A copy is a new draft of the same association: whoever may create its events.
        "duplicate": actor.is_editor_of(association_id),
        "questions": permissions.can_edit_questions(actor, association_id=association_id, status=status)
        or visibility.is_published(status),
        "poster": permissions.can_change_poster(actor, association_id=association_id, status=status),
    }


def editable_fields(actor: Actor, event) -> tuple[str, ...] | None:
    """The fields the actor may change: None for all of them; raises ``Forbidden`` for none."""
    if permissions.can_edit_all_fields(actor, association_id=event.association_id, status=event.status):
        return None
    if permissions.can_edit_published(actor, association_id=event.association_id, status=event.status):
        return lifecycle.PUBLISHED_EDITABLE
    raise errors.Forbidden


def event_form_initial(event) -> dict:
    """The edit form's starting values: the event's fields, its moments in the site's time zone."""
    initial = {name: getattr(event, name) for name in lifecycle.EVENT_FIELDS}
    initial.update({name: localtime.local(initial[name]) for name in
                    ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at",
                     "unregistration_closes_at", "members_open_at", "promos_open_at", "emails_open_at",
                     "reserved_until")
                    if initial[name]})
    # The priority lists as typed in the form: "2028, 2029", one address per line.
    for promos in ("priority_promos", "restricted_promos"):
        initial[promos] = ", ".join(str(promo) for promo in initial[promos] or ())
    for addresses in ("priority_emails", "restricted_emails"):
        initial[addresses] = "\n".join(initial[addresses] or ())
    return initial


# What a copy of an event leaves for its editor to choose: every moment (its date, and the registration's
# opening, closing and priority times, which follow from the date).
_MOMENTS = ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at", "unregistration_closes_at",
            "members_open_at", "promos_open_at", "emails_open_at", "reserved_until")


async def copy_initial(user, event_id: int) -> dict:
    """The new-event form's starting values for a copy of ``event_id``: every field but its moments (the
    editor chooses them) and its address (made from the title and date), and the questions the copy will ask
    (events.staff.services.event_create copies them). 404 for an event the user may not see in the management
    area."""
    page = await event_page(user, event_id)
    initial = event_form_initial(page.found.event)
    for name in _MOMENTS:
        initial.pop(name, None)
    initial["questions"] = page.found.event.questions or []
    return initial


def edit_choices(page: EventPage) -> list[tuple[int, str]]:
    """The associations the edit form offers: the actor's, plus the event's own if it is not among them."""
    choices = page.choices or []
    if page.found.event.association_id not in dict(choices):
        choices = [*choices, (page.found.event.association_id, page.found.association_name)]
    return choices


@dataclass(frozen=True, slots=True)
class Dashboard:
    actor: Actor
    associations: list[queries.AssociationRow]
    queue: list[queries.StaffEventRow]


async def dashboard(user) -> Dashboard:
    async with db.read_session() as session:
        actor = await actor_load(session, user)
        associations = await queries.associations_for(session, actor=actor)
        queue = await queries.approval_queue(session) if actor.is_staff else []
    return Dashboard(actor, associations, queue)


@dataclass(frozen=True, slots=True)
class EventList:
    form: EventListFilterForm
    event_page: queries.StaffEventPage


async def event_list(user, params, *, page: int) -> EventList:
    """The events the actor manages, filtered by the list's form (``params``: the query string)."""
    async with db.read_session() as session:
        actor = await actor_load(session, user)
        form = EventListFilterForm(params or None, associations=await queries.associations_choices(
            session, actor=actor))
        data = form.cleaned_data if form.is_valid() else {}
        event_page = await queries.staff_events(
            session, actor=actor, status=EventStatus(data["status"]) if data.get("status") else None,
            association_id=data.get("association"), query=data.get("q") or "", page=page)
    return EventList(form, event_page)


async def actor_and_choices(user) -> tuple[Actor, list[tuple[int, str]]]:
    """The actor and the associations they may create events for (the new event and series forms)."""
    async with db.read_session() as session:
        actor = await actor_load(session, user)
        return actor, await queries.associations_choices(session, actor=actor)


@dataclass(frozen=True, slots=True)
class AssociationList:
    actor: Actor
    rows: list[queries.AssociationRow]


async def association_list(user) -> AssociationList:
    async with db.read_session() as session:
        actor = await actor_load(session, user)
        return AssociationList(actor, await queries.associations_for(session, actor=actor))


@dataclass(frozen=True, slots=True)
class AssociationPage:
    actor: Actor
    association: queries.AssociationRow | None
    members: list[queries.MemberRow] | None = None


def _manager_check(actor: Actor, association_id: int) -> None:
    if not actor.is_manager_of(association_id):
        # A member who is not its manager may know the association: 403; anyone else: it does not exist.
        raise errors.NotFound if actor.role_in(association_id) is None else errors.Forbidden


async def association_page(user, association_id: int | None, *, members: bool = False) -> AssociationPage:
    """An association its manager (or staff) runs, with its members if asked; ``association_id`` None is a new
    association, which only staff make."""
    async with db.read_session() as session:
        actor = await actor_load(session, user)
        if association_id is None:
            if not actor.is_staff:
                raise errors.Forbidden
            return AssociationPage(actor, None)
        _manager_check(actor, association_id)
        association = await queries.association_by_id(session, association_id=association_id)
        if association is None:
            raise errors.NotFound
        rows = await queries.members(session, association_id=association_id) if members else None
    return AssociationPage(actor, association, rows)


@dataclass(frozen=True, slots=True)
class AuditPage:
    form: AuditFilterForm
    rows: list[queries.AuditRow]
    has_next: bool


async def audit_page(params, *, page: int) -> AuditPage:
    form = AuditFilterForm(params or None)
    data = form.cleaned_data if form.is_valid() else {}
    async with db.read_session() as session:
        rows, has_next = await queries.audit_entries(
            session, action=data.get("action") or "", actor_email=data.get("actor") or "",
            object_type=data.get("object_type") or "", object_id=data.get("object_id"), page=page)
    return AuditPage(form, rows, has_next)
