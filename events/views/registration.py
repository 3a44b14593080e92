"""A student's registrations: register (with an overlap warning first), leave, and "My events"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from markupsafe import Markup

from events import errors
from events.catalog import presenters
from events.catalog import queries as catalog_queries
from events.models import RegistrationStatus, utcnow
from events.registration import leaving, lottery, memory, offers
from events.registration import presenters as registration_presenters
from events.registration import queries as registration_queries
from events.registration import questions as registration_questions
from events.registration import services as registration_services
from events.registration.questions import AnswersForm
from events.rules import attendance, restrictions, tickets, window
from events.rules import questions as question_rules
from events.views.helpers import login_required, may_see_or_404, run_service, verified_required
from hyperion import db, quickposts


async def _published_event(slug: str, user_id: int, *, fresh: bool = False):
    """The published event the address names (404 otherwise): from memory when kept (unless ``fresh``), else
    read."""
    event = None if fresh else memory.kept_event(slug)
    if event is None:
        async with db.read_connection() as connection:
            event = await catalog_queries.event_detail(connection, slug=slug, viewer_id=user_id)
        if event is None or not event.is_published:
            raise Http404
    return event


async def _confirm_page(request, slug: str, overlaps: list[str]):
    event = await _published_event(slug, request.user.id)
    may_see_or_404(request, event)  # (the overlap warning shows the event)
    return render(request, "events/register_confirm.html", {
        "event": presenters.event_page(event, now=utcnow(), student=request.user), "overlaps": overlaps,
        # the answers to the event's questions go with "Register anyway", as they came
        "answers": [(name, value) for name, value in request.POST.items()
                    if name.startswith("answer_") or name == "questions"]})


async def _answers_page(request, event, form, status: int = 400):
    return render(request, "events/answers.html", {
        "event": presenters.event_page(event, now=utcnow(), student=request.user), "form": form}, status=status)


async def _answers_saved(request, event, *, registering: bool):
    """Save the answers the form carries to ``event``'s questions: None when saved, else the page that asks
    them again with what is wrong (400)."""
    form = AnswersForm(request.POST, questions=question_rules.questions_of(event))
    if form.is_valid():
        try:
            await run_service(registration_questions.answers_save, event_id=event.id, user_id=request.user.id,
                              answers=form.answers(), registering=registering)
            return None
        except (registration_questions.QuestionsChanged, registration_questions.AnswersClosed,
                registration_questions.NotRegistered) as error:
            form = AnswersForm(request.POST, questions=question_rules.questions_of(
                await _published_event(event.slug, request.user.id, fresh=True)))
            form.is_valid()
            form.add_error(None, error.message)
    return await _answers_page(request, event, form)


_ENTRY_RECORDED = gettext_lazy("Your entry for the draw is recorded. When you asked during the window does not "
                               "matter: the seats are drawn at random when it closes.")


def lottery_opening(slug: str, kept=None):
    """The event ``slug`` if it is in its lottery window now, as this process knows it without a read (kept
    for its page, or by the drawer), and an entry needs nothing more than the window; else None. While the
    association's no-shows may still be waiting for their own, later opening (``rules.attendance``), asks
    take the locked path, which reads each student's no-shows."""
    opening = kept or memory.kept_event(slug) or lottery.undrawn(slug)
    now = utcnow()
    if opening is None or not window.in_lottery_window(opening, now) or opening.questions \
            or not restrictions.open_to_everyone(opening):
        return None  # (answers to questions are saved first, and who may register is checked, on the locked way)
    if attendance.penalty_window_open(opening.registration_opens_at, opening.no_show_delay_hours, now):
        return None
    return opening


async def overlaps_with(user_id: int, slug: str, opening) -> list[str]:
    """Titles of the student's confirmed events that overlap ``opening`` (kept, or read)."""
    overlaps = memory.kept_overlaps(user_id, opening)
    if overlaps is not None:
        return overlaps
    async with db.read_connection() as connection:
        return await registration_queries.confirmed_overlaps(connection, user_id=user_id, slug=slug) or []


async def lottery_entry(user_id: int, opening):
    """The student's entry in the draw (None: nothing written, the locked path answers)."""
    return await run_service(lottery.lottery_enter, event=opening, event_id=opening.id, user_id=user_id)


@require_POST
@login_required
@verified_required
async def register(request, slug: str):
    user = request.user
    confirmed = request.POST.get("confirm_overlap") == "yes"
    kept = memory.kept_event(slug)
    opening = lottery_opening(slug, kept)
    if opening is not None and (entered := await _lottery_entered(request, slug, opening, confirmed)):
        return entered
    # An event with questions gets its answers first: known from memory, or from the form's marker (then the
    # event is read: the only read before the transaction, for such events alone). A form without it (a page
    # from before the questions) meets the service's own check, which sends the student to the questions.
    if opening is None and (kept.questions if kept is not None else "questions" in request.POST) and (
            refused := await _answers_taken(request, kept or await _published_event(slug, user.id))):
        return refused
    check_overlaps = False
    if not confirmed:
        # From memory when the event and the student's registrations are kept; else the service checks, under
        # the lock, in the statement that counts the seats.
        overlaps = memory.kept_overlaps(user.id, kept) if kept is not None else None
        if overlaps:
            return await _confirm_page(request, slug, overlaps)
        check_overlaps = overlaps is None
    return await _registration_asked(request, slug, check_overlaps)


async def _answers_taken(request, event):
    """The answers that come with a registration, saved before the seat is asked: None when saved, else the
    answer (404 for an outsider of a hidden event, the refusal for a student it does not admit: nothing is
    written for either)."""
    may_see_or_404(request, event)
    if not restrictions.admits(event, request.user):
        messages.error(request, registration_services.RegistrationRestricted.message)
        return redirect("event_detail", slug=event.slug)
    return await _answers_saved(request, event, registering=True)


async def _registration_asked(request, slug: str, check_overlaps: bool):
    """The seat asked of the registration service, and the page that says what came of it. By slug: the
    service finds the published event under its lock (404 otherwise), so the POST reads nothing before its
    transaction."""
    user = request.user
    try:
        outcome = await run_service(registration_services.registration_create, slug=slug, user_id=user.id,
                                    check_overlaps=check_overlaps)
    except errors.EventNotFound:
        raise Http404 from None
    except registration_services.RegistrationRestricted as error:
        may_see_or_404(request, await _published_event(slug, user.id, fresh=True))  # hidden: not disclosed
        messages.error(request, error.message)
        return redirect("event_detail", slug=slug)
    except registration_services.OverlapsToConfirm as overlapping:
        return await _confirm_page(request, slug, overlapping.titles)
    except registration_questions.AnswersNeeded as error:
        event = await _published_event(slug, user.id, fresh=True)
        form = AnswersForm(request.POST, questions=question_rules.questions_of(event))
        form.is_valid()  # (what is missing is marked on the fields)
        form.add_error(None, error.message)
        return await _answers_page(request, event, form)
    except errors.DomainError as error:
        messages.error(request, error.message)
        return redirect("event_detail", slug=slug)
    _tell_outcome(request, outcome)
    return redirect("event_detail", slug=slug)


async def _lottery_entered(request, slug: str, opening, confirmed: bool):
    """An entry in the draw: one INSERT, no lock (an entry does not change the seats, so the event stays in
    memory during the window). The answer, or None when anything is unusual (a registration already there, an
    event changed meanwhile): the locked way then answers every case."""
    overlapping = [] if confirmed else await overlaps_with(request.user.id, slug, opening)
    if overlapping:
        return await _confirm_page(request, slug, overlapping)
    if await lottery_entry(request.user.id, opening) is None:
        return None
    common = CookieStorage.cookie_name not in request.COOKIES  # no earlier message joins this one
    messages.success(request, _ENTRY_RECORDED)
    if common:  # the answer every entrant gets: the quick path may send it again (events/views/quick.py)
        quickposts.mark_common(request)
    return redirect("event_detail", slug=slug)


def _tell_outcome(request, outcome) -> None:
    if outcome.status == RegistrationStatus.ENTERED:
        messages.success(request, _ENTRY_RECORDED)
    elif outcome.status == RegistrationStatus.CONFIRMED:
        messages.success(request, _("You are registered: your place is confirmed."))
    else:
        messages.warning(request, _("The event is full: you are on the waitlist, position %(position)d. "
                                    "You will get a place automatically if one frees up.")
                         % {"position": outcome.waitlist_position})


@require_POST
@login_required
async def leave(request, slug: str):
    event = await _published_event(slug, request.user.id)
    may_see_or_404(request, event)
    try:
        outcome = await run_service(leaving.registration_leave, event_id=event.id, user_id=request.user.id)
    except errors.DomainError as error:
        messages.error(request, error.message)
        return redirect("event_detail", slug=slug)
    if outcome.previous_status == RegistrationStatus.WAITLISTED:
        messages.success(request, _("You have left the waitlist."))
    elif outcome.previous_status == RegistrationStatus.OFFERED:
        messages.success(request, _("You declined the seat: it goes to the next in line."))
    elif outcome.previous_status == RegistrationStatus.ENTERED:
        messages.success(request, _("Your entry is withdrawn: you are not in the draw any more."))
    else:
        messages.success(request, _("You have left this event; your seat has been freed."))
    return redirect("event_detail", slug=slug)


@require_POST
@login_required
@verified_required
async def accept_offer(request, slug: str):
    """The student takes the seat offered to them (from the page the offer's e-mail links to)."""
    event = await _published_event(slug, request.user.id)
    may_see_or_404(request, event)
    try:
        await run_service(offers.offer_accept, event_id=event.id, user_id=request.user.id)
    except errors.DomainError as error:
        messages.error(request, error.message)
        return redirect("event_detail", slug=slug)
    messages.success(request, _("You accepted the seat: your place is confirmed."))
    return redirect("event_detail", slug=slug)


@require_POST
@login_required
@verified_required
async def answers_change(request, slug: str):
    """The student changes their answers to the event's questions (until the deadline, while registered)."""
    event = await _published_event(slug, request.user.id)
    may_see_or_404(request, event)
    if not event.questions:
        raise Http404
    if refused := await _answers_saved(request, event, registering=False):
        return refused
    messages.success(request, _("Your answers are saved."))
    return redirect("event_detail", slug=slug)


@login_required
async def my_events(request):
    rows = await memory.my_registrations(request.user.id, fresh=memory.just_acted(request))
    return render(request, "events/my_events.html", registration_presenters.my_events(rows, now=utcnow()))


@login_required
async def ticket(request, registration_id: int):
    """The student's ticket for a confirmed registration of an event going ahead: its QR code, to show at the
    door. Another student's registration, or one that is not confirmed, is a 404."""
    rows = await memory.my_registrations(request.user.id, fresh=False)
    row = next((row for row in rows if row.registration_id == registration_id), None)
    if row is None or not tickets.has_ticket(status=row.status, event_status=row.event.status,
                                             event_ends_at=row.event.ends_at, now=utcnow()):
        raise Http404
    code = tickets.ticket_code(event_id=row.event.id, registration_id=row.registration_id)
    response = render(request, "events/ticket.html", {
        "card": presenters.event_card(row.event), "code": code, "holder": request.user.display_name,
        # segno's own SVG of a code our signer made: nothing a user typed reaches it.
        "qr": Markup(tickets.ticket_svg(code))})  # noqa: S704  # nosec B704
    response["Cache-Control"] = "private, no-store"
    return response
