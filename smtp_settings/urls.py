"""Manage SMTP's routes, under /administration/."""

from __future__ import annotations

from django.urls import path

from smtp_settings import fallback_views, views
from smtp_settings.assistant import views as assistant

app_name = "smtp_settings"

urlpatterns = [
    path("smtp/", views.manage_smtp, name="manage"),
    path("smtp/validate/", views.validate, name="validate"),
    path("smtp/fallback/", fallback_views.fallback_smtp, name="fallback"),
    path("smtp/setup/", assistant.setup, name="setup"),
    path("smtp/setup/script.ps1", assistant.setup_script, name="setup_script"),
    path("smtp/setup/use/", assistant.setup_use, name="setup_use"),
    path("smtp/setup/restart/", assistant.setup_restart, name="setup_restart"),
    path("smtp/runs/recent/", views.recent_runs, name="recent_runs"),
    path("smtp/runs/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path("smtp/runs/<uuid:run_id>/status.json", views.run_status, name="run_status"),
    path("smtp/runs/<uuid:run_id>/script.ps1", assistant.run_script, name="run_script"),
    path("smtp/health-check/", views.health_check_start, name="health_check"),
    path("smtp/outbox/", views.outbox_list, name="outbox"),
    path("smtp/outbox/<int:email_id>/", views.outbox_message, name="outbox_message"),
    path("smtp/outbox/<int:email_id>/action/", views.outbox_action, name="outbox_action"),
]
