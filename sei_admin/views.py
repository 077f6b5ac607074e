"""Project-wide pages: the console home, the Administration index, the 403 page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from smtp_settings import services
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
    return render(
        request,
        "administration/index.html",
        {"smtp": SmtpSettings.load(), "heartbeat": services.worker_last_seen()},
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)
