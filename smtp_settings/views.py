"""Thin views: parse the request, call a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from smtp_settings import services
from smtp_settings.forms import SmtpSettingsForm
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


@administrator_required
@require_http_methods(["GET", "POST"])
def manage_smtp(request: HttpRequest) -> HttpResponse:
    current = SmtpSettings.load()
    if request.method == "POST":
        form = SmtpSettingsForm(request.POST, instance=current)
        if form.is_valid():
            result = services.smtp_settings_save(form=form, user=request.user)
            messages.success(request, "SMTP settings saved.")
            for warning in result.warnings:
                messages.warning(request, warning)
            return redirect("smtp_settings:manage")
        status = 400
    else:
        form = SmtpSettingsForm(instance=current)
        status = 200
    # Rebuild from the database: a failed POST must not show an unsaved secret's status.
    stored = SmtpSettings.load()
    return render(
        request,
        "smtp_settings/manage.html",
        {
            "form": form,
            "stored": stored,
            "secret_status": services.smtp_settings_secret_status(settings_row=stored),
            "changes": services.smtp_settings_recent_changes(),
        },
        status=status,
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)
