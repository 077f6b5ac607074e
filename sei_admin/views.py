"""Project-wide pages: the console home, the Administration index, the 403 page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from smtp_settings import alerts, services, status
from smtp_settings.models import SmtpSettings
from smtp_settings.permissions import ADMINISTER_PERMISSION, administrator_required


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {
            "smtp": SmtpSettings.load(),
            "can_administer": request.user.has_perm(ADMINISTER_PERMISSION),
        },
    )


@administrator_required
def administration_index(request: HttpRequest) -> HttpResponse:
    smtp = SmtpSettings.load()
    return render(
        request,
        "administration/index.html",
        {
            "smtp": smtp,
            "heartbeat": services.worker_last_seen(),
            "status": status.mail_status(settings_row=smtp),
            "recipients": alerts.alert_recipients(settings_row=smtp),
        },
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)
