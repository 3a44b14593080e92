"""The site's URLs: everything lives in the events app."""

from django.urls import include, path

urlpatterns = [path("", include("events.urls"))]

handler400 = "events.views.errors.bad_request"
handler403 = "events.views.errors.permission_denied"
handler404 = "events.views.errors.page_not_found"
handler500 = "events.views.errors.server_error"
