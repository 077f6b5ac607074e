"""Manage SMTP's routes, under /administration/."""

from __future__ import annotations

from django.urls import path

from smtp_settings import fallback_views, views
from smtp_settings.assistant import views as assistant
from smtp_settings.credentials import views as credentials

app_name = "smtp_settings"

urlpatterns = [
    path("smtp/", views.manage_smtp, name="manage"),
    path("smtp/validate/", views.validate, name="validate"),
    path("smtp/fallback/", fallback_views.fallback_smtp, name="fallback"),
    path("smtp/setup/", assistant.setup, name="setup"),
    path("smtp/setup/script.ps1", assistant.setup_script, name="setup_script"),
    path("smtp/setup/use/", assistant.setup_use, name="setup_use"),
    path("smtp/setup/certificate.cer", assistant.setup_certificate, name="setup_certificate"),
    path("smtp/setup/restart/", assistant.setup_restart, name="setup_restart"),
    path(
        "smtp/credentials/certificate/",
        credentials.certificate_create,
        name="certificate_create",
    ),
    path("smtp/credentials/import/", credentials.certificate_import, name="certificate_import"),
    path("smtp/credentials/secret/", credentials.secret_add, name="secret_add"),
    path(
        "smtp/credentials/<int:credential_id>/validate/",
        credentials.credential_validate,
        name="credential_validate",
    ),
    path(
        "smtp/credentials/<int:credential_id>/promote/",
        credentials.credential_promote,
        name="credential_promote",
    ),
    path(
        "smtp/credentials/<int:credential_id>/remove/",
        credentials.credential_remove,
        name="credential_remove",
    ),
    path(
        "smtp/credentials/<int:credential_id>/certificate.cer",
        credentials.certificate_download,
        {"form": "cer"},
        name="certificate_cer",
    ),
    path(
        "smtp/credentials/<int:credential_id>/certificate.pem",
        credentials.certificate_download,
        {"form": "pem"},
        name="certificate_pem",
    ),
    path("smtp/runs/recent/", views.recent_runs, name="recent_runs"),
    path("smtp/runs/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path("smtp/runs/<uuid:run_id>/status.json", views.run_status, name="run_status"),
    path("smtp/runs/<uuid:run_id>/script.ps1", assistant.run_script, name="run_script"),
    path("smtp/health-check/", views.health_check_start, name="health_check"),
    path("smtp/outbox/", views.outbox_list, name="outbox"),
    path("smtp/outbox/<int:email_id>/", views.outbox_message, name="outbox_message"),
    path("smtp/outbox/<int:email_id>/action/", views.outbox_action, name="outbox_action"),
]
