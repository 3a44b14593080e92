"""The site's URLs: everything lives in the events app, but the health check."""

from django.urls import include, path

from hyperion.health import healthz

urlpatterns = [path("healthz", healthz, name="healthz"), path("", include("events.urls"))]

handler400 = "events.views.errors.bad_request"
handler403 = "events.views.errors.permission_denied"
handler404 = "events.views.errors.page_not_found"
handler500 = "events.views.errors.server_error"
