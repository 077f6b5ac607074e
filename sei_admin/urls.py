"""URL map: sign-in, the console home, and the Administration section."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from sei_admin import views
from smtp_settings import health

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("csp-report/", views.csp_report, name="csp_report"),
    path("session/keepalive/", views.session_keepalive, name="session_keepalive"),
    path("healthz", health.HealthView.as_view(), name="healthz"),
    path("healthz/", health.HealthView.as_view()),
    path("healthz/live", health.LiveView.as_view(), name="healthz_live"),
    path("administration/", views.administration_index, name="administration"),
    path("administration/", include("smtp_settings.urls")),
]

handler403 = "sei_admin.views.permission_denied"
