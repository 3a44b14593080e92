from django.urls import path

from events.views import account, feeds, public, registration

urlpatterns = [
    path("", public.home, name="home"),
    path("calendar/", public.calendar_month, name="calendar_month"),
    path("calendar/week/", public.calendar_week, name="calendar_week"),
    path("events/<slug:slug>/", public.event_detail, name="event_detail"),
    path("events/<slug:slug>/register/", registration.register, name="event_register"),
    path("events/<slug:slug>/leave/", registration.leave, name="event_leave"),
    path("associations/<slug:slug>/", public.association_detail, name="association_detail"),
    path("me/events/", registration.my_events, name="my_events"),
    path("account/", account.account, name="account"),
    path("account/signup/", account.signup, name="signup"),
    path("account/login/", account.login, name="login"),
    path("account/logout/", account.logout, name="logout"),
    path("account/password/", account.password_change, name="password_change"),
    path("account/feed/", account.feed_token, name="feed_token"),
    path("language/", account.set_language, name="set_language"),
    path("events/<slug:slug>.ics", feeds.event_ics, name="event_ics"),
    path("feeds/events.ics", feeds.feed_all, name="feed_all"),
    path("feeds/associations/<slug:slug>.ics", feeds.feed_association, name="feed_association"),
    path("feeds/categories/<slug:slug>.ics", feeds.feed_category, name="feed_category"),
    path("feeds/me/<str:token>.ics", feeds.feed_personal, name="feed_personal"),
]
