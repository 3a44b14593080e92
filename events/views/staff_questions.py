"""The management area's page of an event's registration questions: the list with how many gave each answer,
adding one, removing one (after a confirmation that says how many answers go with it), and until when answers
may change."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from events import errors, localtime
from events.rules import permissions
from events.rules import questions as rules
from events.staff import pages as staff_pages
from events.staff import questions as staff_questions
from events.staff.forms import AnswersDeadlineForm, QuestionForm
from events.views.helpers import run_service
from events.views.staff import form_status, management, service_error


@management
async def event_questions(request, event_id: int):
    page = await staff_pages.event_page(request.user, event_id, answers=True, attendees="")
    event = page.found.event
    can_edit = permissions.can_edit_questions(page.actor, association_id=event.association_id, status=event.status)
    action = request.POST.get("action") if request.method == "POST" else None
    if action is not None and not can_edit:
        raise PermissionDenied
    form = QuestionForm(request.POST if action == "add" else None)
    deadline = AnswersDeadlineForm(request.POST if action == "deadline" else None, initial={
        "answers_close_at": localtime.local(event.answers_close_at) if event.answers_close_at else None})
    bound = form if action == "add" else deadline
    if action in ("add", "deadline") and bound.is_valid():
        return await _questions_saved(request, page.actor, event_id, action, bound.cleaned_data)
    asked = rules.questions_of(event)
    return render(request, "staff/questions.html", {
        "found": page.found, "questions": asked, "form": form, "deadline": deadline, "can_edit": can_edit,
        "counts": rules.answer_counts(asked, staff_pages.registrants_answers(page)),
        "closes_at": rules.answers_close_at(event),
    }, status=form_status(bound))


async def _questions_saved(request, actor, event_id: int, action: str, fields: dict):
    try:
        if action == "add":
            await run_service(staff_questions.question_add, actor=actor, event_id=event_id, kind=fields["kind"],
                              label=fields["label"], choices=fields["choices"], required=fields["required"])
            messages.success(request, _("Question added: students answer it when they register."))
        else:
            await run_service(staff_questions.answers_deadline_set, actor=actor, event_id=event_id,
                              answers_close_at=fields["answers_close_at"])
            messages.success(request, _("Saved."))
    except (errors.Forbidden, errors.NotFound, errors.EventNotFound) as error:
        return service_error(request, error, event_id)
    except errors.DomainError as error:
        messages.error(request, error.message)
    return redirect("staff_event_questions", event_id=event_id)


@management
async def event_question_remove(request, event_id: int, question_id: str):
    page = await staff_pages.event_page(request.user, event_id, answers=request.method != "POST")
    event = page.found.event
    if not permissions.can_edit_questions(page.actor, association_id=event.association_id, status=event.status):
        raise PermissionDenied
    question = next((asked for asked in rules.questions_of(event) if asked.id == question_id), None)
    if question is None:
        raise Http404
    if request.method == "POST":
        try:
            answered = await run_service(staff_questions.question_remove, actor=page.actor, event_id=event_id,
                                         question_id=question_id)
        except errors.DomainError as error:
            return service_error(request, error, event_id)
        messages.success(request, _("Question removed, with %(count)d answers.") % {"count": answered})
        return redirect("staff_event_questions", event_id=event_id)
    answered = sum(1 for answers in page.answers.values() if answers.get(question_id))
    return render(request, "staff/confirm.html", {
        "title": _("Remove this question?"),
        "question": _("'%(label)s' will no longer be asked; the %(count)d answers given to it are deleted.")
        % {"label": question.label, "count": answered},
        "button": _("Remove"), "back": f"/manage/events/{event_id}/questions/"})
