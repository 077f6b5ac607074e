"""The fallback connection's page (issue 20 point 6): a second, optional connection, with
the same fields, rules and Validate as Manage SMTP's; Save and Remove."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from smtp_settings import services, validation
from smtp_settings.forms import SmtpSettingsForm, TestRecipientForm
from smtp_settings.models import SmtpSettings
from smtp_settings.permissions import administrator_required


def _page(
    request: HttpRequest, form: SmtpSettingsForm, stored: SmtpSettings, status: int = 200
) -> HttpResponse:
    recipient_form = TestRecipientForm(
        request.POST or None, initial={"test_recipient": getattr(request.user, "email", "")}
    )
    return render(
        request,
        "smtp_settings/fallback.html",
        {
            "form": form,
            "recipient_form": recipient_form,
            "stored": stored,
            "secret_status": services.smtp_settings_secret_status(settings_row=stored),
            "secret_bindings": services.smtp_settings_secret_bindings(settings_row=stored),
            # Its own runs and saves, not the primary's.
            "runs": validation.validation_recent_runs(connection=SmtpSettings.FALLBACK_PK),
            "changes": services.smtp_settings_recent_changes(connection=SmtpSettings.FALLBACK_PK),
            "on_fallback_page": True,
        },
        status=status,
    )


@administrator_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("client_secret", "password")
@sensitive_variables("form")
def fallback_smtp(request: HttpRequest) -> HttpResponse:
    stored = SmtpSettings.load_fallback()
    if request.method == "POST" and request.POST.get("action") == "remove":
        if services.smtp_fallback_remove(user=request.user):
            messages.success(request, "Fallback connection removed.")
        return redirect("smtp_settings:fallback")
    if request.method == "POST":
        form = SmtpSettingsForm(request.POST, instance=stored)
        if form.is_valid():
            try:
                services.smtp_settings_save(
                    values=form.cleaned_data,
                    user=request.user,
                    opened_version=form.cleaned_data.get("version"),
                    pk=SmtpSettings.FALLBACK_PK,
                )
            except services.StaleSettings as stale:
                form.add_error(None, str(stale))
                return _page(request, form, SmtpSettings.load_fallback(), status=409)
            messages.success(request, "Fallback connection saved.")
            return redirect("smtp_settings:fallback")
        return _page(request, form, SmtpSettings.load_fallback(), status=400)
    return _page(request, SmtpSettingsForm(instance=stored), stored)
