"""The site's URL table (same paths and names, so templates reverse the same links), with the benchmarked
pages answered by the baseline's sync views and every other page by a 404 stub."""

from django.urls import URLPattern, path

from bench.baseline import views
from events import urls as site_urls

_VIEWS = {
    "home": views.home,
    "calendar_month": views.calendar_month,
    "event_detail": views.event_detail,
    "event_register": views.register,
    "event_leave": views.leave,
    "my_events": views.my_events,
    "feed_personal": views.feed_personal,
}

urlpatterns = [path("healthz", views.healthz, name="healthz")] + [
    URLPattern(pattern.pattern, _VIEWS.get(pattern.name, views.not_in_baseline), name=pattern.name)
    for pattern in site_urls.urlpatterns
]

handler400 = "events.views.errors.bad_request"
handler403 = "events.views.errors.permission_denied"
handler404 = "events.views.errors.page_not_found"
handler500 = "events.views.errors.server_error"
