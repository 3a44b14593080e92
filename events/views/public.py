"""Pages anyone can see: the upcoming events list."""

from django.conf import settings
from django.shortcuts import render

from events import presenters, queries
from events.models import utcnow
from hyperion import db


async def home(request):
    filters = queries.EventFilters()
    page = presenters.page_number(request.GET.get("page"))
    async with db.read_session() as session:
        event_page = await queries.events_upcoming(session, now=utcnow(), filters=filters, page=page,
                                                   tz=presenters.site_zone())
    return render(request, "events/home.html", {
        "days": presenters.group_by_day(event_page.rows),
        "event_page": event_page,
        "site_name": settings.SITE_NAME,
    })
