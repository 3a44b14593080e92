"""The management area's image pages: an event's poster and an association's logo.

An upload is checked, re-encoded and stored before the write (hyperion/images.py, in the image gate's
thread: a full line is a 429 like a full hashing line), only for whoever may change the image, so that
nobody else makes the site decode anything. A refused file is the form's error and leaves nothing stored.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from events.rules import permissions
from events.staff import images as staff_images
from events.staff import pages as staff_pages
from events.staff.forms import ImageForm
from events.views.busy import refused_when_hashing_is_busy
from events.views.helpers import run_service
from events.views.staff import form_status, management
from hyperion import images
from hyperion.images import ImageRef


@management
@refused_when_hashing_is_busy
async def event_poster(request, event_id: int):
    page = await staff_pages.event_page(request.user, event_id)
    event = page.found.event
    if not permissions.can_change_poster(page.actor, association_id=event.association_id, status=event.status):
        raise PermissionDenied
    current = ImageRef.parse(event.poster)
    form = ImageForm(request.POST or None, request.FILES or None, has_image=current is not None,
                     initial={"alt": event.poster_alt})
    if request.method == "POST" and form.is_valid():
        saved = await _saved(request, form, staff_images.event_poster_set, actor=page.actor, event_id=event_id)
        if saved is not None:
            messages.success(request, _("Poster saved.") if saved else _("Nothing changed."))
            return redirect("staff_event", event_id=event_id)
    return render(request, "staff/image_form.html", {
        "form": form, "current": current, "current_alt": event.poster_alt, "kind": "poster",
        "title": event.title, "back": ("staff_event", event_id)}, status=form_status(form))


@management
@refused_when_hashing_is_busy
async def association_logo(request, association_id: int):
    page = await staff_pages.association_page(request.user, association_id)
    association = page.association
    if association is None:  # only a new association's page has none, and this address always names one
        raise Http404
    current = ImageRef.parse(association.logo)
    form = ImageForm(request.POST or None, request.FILES or None, has_image=current is not None,
                     initial={"alt": association.logo_alt})
    if request.method == "POST" and form.is_valid():
        saved = await _saved(request, form, staff_images.association_logo_set, actor=page.actor,
                             association_id=association_id)
        if saved is not None:
            messages.success(request, _("Logo saved.") if saved else _("Nothing changed."))
            return redirect("staff_associations")
    return render(request, "staff/image_form.html", {
        "form": form, "current": current, "current_alt": association.logo_alt, "kind": "logo",
        "title": association.name, "back": ("staff_associations",)}, status=form_status(form))


async def _saved(request, form, service, **arguments) -> bool | None:
    """Store the upload if there is one, then run the service: whether it changed anything, or None when the
    form now carries the refusal. The files of an image whose write is then refused stay for ``manage.py
    pruneimages`` (another upload of the same image may use the very same files: hyperion/images.py)."""
    upload = form.cleaned_data.get("image")
    image: ImageRef | None = None
    if upload:
        try:
            image = await images.accept(upload.read())
        except images.ImageRefused as refusal:
            form.add_error("image", refusal.message)
            return None
    choice = staff_images.ImageChoice(alt=form.cleaned_data.get("alt", ""), image=image,
                                      remove=bool(form.cleaned_data.get("remove")))
    try:
        return await run_service(service, choice=choice, **arguments)
    except staff_images.NoImage as error:  # nothing was uploaded, so nothing stored
        form.add_error("image", error.message)
        return None
    except staff_images.ChangeNotAllowed as error:
        raise PermissionDenied from error
