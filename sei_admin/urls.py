"""URL map: sign-in, the console home, the accounts pages and the Administration section."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import passwords
from accounts import views as account_views
from sei_admin import views
from smtp_settings.monitoring import healthz

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", account_views.SignInView.as_view(), name="login"),
    path("login/code/", account_views.signin_code, name="login_code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "account/password/",
        passwords.GuardedPasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("login/reset/", passwords.ThrottledPasswordResetView.as_view(), name="password_reset"),
    path(
        "login/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "login/reset/<uidb64>/<token>/",
        passwords.RecordedPasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "login/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("csp-report/", views.csp_report, name="csp_report"),
    path("session/keepalive/", views.session_keepalive, name="session_keepalive"),
    path("healthz", healthz.HealthView.as_view(), name="healthz"),
    path("healthz/", healthz.HealthView.as_view()),
    path("healthz/live", healthz.LiveView.as_view(), name="healthz_live"),
    path("administration/", views.administration_index, name="administration"),
    path("administration/activity/", views.activity, name="activity"),
    path("administration/alerts/", include("alerting.urls")),
    path("administration/", include("smtp_settings.urls")),
    path("", include("accounts.urls")),
]

handler403 = "sei_admin.views.permission_denied"
