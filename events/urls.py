from django.urls import path

from events.views import public

urlpatterns = [
    path("", public.home, name="home"),
]
