"""Manage SMTP's pages and the progress endpoint: parse the request, call a service, render."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from post_office.models import Email

from smtp_settings import assistant, outbox, services, validation
from smtp_settings.credentials.section import credentials_section
from smtp_settings.forms import SmtpSettingsForm, TestRecipientForm
from smtp_settings.models import DeliveryState, SmtpSettings, ValidationRun
from smtp_settings.monitoring import alerts, health_check
from smtp_settings.monitoring.status import for_request, mail_at_a_glance
from smtp_settings.permissions import administrator_required
from smtp_settings.validation import progress

# Short enough that a proxy or browser never gives up on the request first.
LONG_POLL_SECONDS = 15.0


def _manage_page(
    request: HttpRequest,
    form: SmtpSettingsForm,
    recipient_form: TestRecipientForm,
    *,
    status: int = 200,
    stored: SmtpSettings | None = None,
    setup_run: ValidationRun | None = None,
    credential_forms: dict[str, Any] | None = None,
) -> HttpResponse:
    # Read again after a POST: a failed one must not show an unsaved secret's status (the
    # form's instance has the POSTed values on it by then). The request's mail snapshot
    # reads the row with the status block's data in one query.
    snapshot = for_request(request)
    stored = stored or snapshot.row
    return render(
        request,
        "smtp_settings/manage.html",
        {
            "form": form,
            "recipient_form": recipient_form,
            "stored": stored,
            "secret_status": services.smtp_settings_secret_status(settings_row=stored),
            "secret_bindings": services.smtp_settings_secret_bindings(settings_row=stored),
            "changes": services.smtp_settings_recent_changes(),
            "runs": validation.validation_recent_runs(),
            "mail_state": mail_at_a_glance(snapshot=snapshot),
            "recipients": alerts.alert_recipients(settings_row=stored),
            # The setup assistant's secret, waiting for this form (never its value).
            "setup_secret": form.setup_secret,
            "setup_run": validation.validation_run_as_dict(run=setup_run) if setup_run else None,
            **credentials_section(stored, credential_forms or {}),
        },
        status=status,
    )


def manage_page_with(
    request: HttpRequest, *, credential_forms: dict[str, Any], status: int
) -> HttpResponse:
    """Manage SMTP with a refused form of the Credentials section showing its errors."""
    stored = for_request(request).row
    return _manage_page(
        request,
        SmtpSettingsForm(instance=stored),
        _recipient_form(request),
        stored=stored,
        status=status,
        credential_forms=credential_forms,
    )


def _setup_secret(request: HttpRequest) -> assistant.HeldSecret | None:
    """The secret the setup assistant holds for this session, when the form asks for it."""
    wanted = request.GET.get("from") == "setup" or request.POST.get("use_setup_secret")
    if not wanted:
        return None
    return assistant.setup_secret_read(user=request.user, session_key=request.session.session_key)


def _recipient_form(request: HttpRequest, data: object = None) -> TestRecipientForm:
    return TestRecipientForm(data, initial={"test_recipient": getattr(request.user, "email", "")})


# Error reports (the DEBUG page, mails to ADMINS) show these POST fields as stars.
_SECRET_POST_FIELDS = ("client_secret", "password")


_SETUP_OFFERED = "setup_assistant_offered"


@administrator_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters(*_SECRET_POST_FIELDS)
@sensitive_variables("form")
def manage_smtp(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = SmtpSettingsForm(
            request.POST, instance=SmtpSettings.load(), setup_secret=_setup_secret(request)
        )
        if form.is_valid():
            try:
                services.smtp_settings_save(
                    values=form.cleaned_data,
                    user=request.user,
                    opened_version=form.cleaned_data.get("version"),
                )
            except services.StaleSettings as stale:
                return _stale_page(request, stale)
            if form.used_setup_secret:
                # Saved (encrypted) where it belongs now: the assistant's copy goes.
                assistant.setup_secret_erase(user=request.user)
            messages.success(request, "SMTP settings saved.")
            for warning in form.warnings:
                messages.warning(request, warning)
            return redirect("smtp_settings:manage")
        return _manage_page(request, form, _recipient_form(request, request.POST), status=400)
    stored = for_request(request).row
    if (
        settings.SEI_SETUP_ASSISTANT_FIRST
        and not stored.is_stored
        and "form" not in request.GET
        and "from" not in request.GET
        and not request.session.get(_SETUP_OFFERED)
    ):
        # Nothing is configured: the five Microsoft steps come before any of this form.
        request.session[_SETUP_OFFERED] = True
        return redirect(f"{reverse('smtp_settings:setup')}?first=1")
    if request.GET.get("from") == "setup":
        # "Use these settings": the assistant's values, unsaved, and the Validate run of them.
        form = SmtpSettingsForm(
            instance=stored,
            initial=assistant.setup_manage_initial(
                user=request.user, session_key=request.session.session_key
            ),
            setup_secret=_setup_secret(request),
        )
        run = ValidationRun.objects.filter(
            pk=_uuid_or_none(request.GET.get("run")), requested_by=request.user
        ).first()
        return _manage_page(request, form, _recipient_form(request), setup_run=run, stored=stored)
    return _manage_page(
        request, SmtpSettingsForm(instance=stored), _recipient_form(request), stored=stored
    )


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        return None


def _stale_page(request: HttpRequest, stale: Exception) -> HttpResponse:
    """The input kept, and the page now based on the stored version: a second Save is
    a deliberate choice over the other administrator's change."""
    data = request.POST.copy()
    data["version"] = str(SmtpSettings.load().version)
    form = SmtpSettingsForm(data, instance=SmtpSettings.load(), setup_secret=_setup_secret(request))
    form.is_valid()
    form.add_error(None, str(stale))
    return _manage_page(request, form, _recipient_form(request, request.POST), status=409)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@administrator_required
@require_POST
@sensitive_post_parameters(*_SECRET_POST_FIELDS)
@sensitive_variables("form")
def validate(request: HttpRequest) -> HttpResponse:
    """Start a validation run of the form's current, unsaved values (the fallback
    connection's page says ``connection=fallback``: a blank secret is then its own)."""
    fallback = request.POST.get("connection") == "fallback"
    pk = SmtpSettings.FALLBACK_PK if fallback else SmtpSettings.SINGLETON_PK
    form = SmtpSettingsForm(
        request.POST,
        instance=SmtpSettings.load_fallback() if fallback else SmtpSettings.load(),
        for_validate=True,
        setup_secret=None if fallback else _setup_secret(request),
    )
    recipient_form = _recipient_form(request, request.POST)
    forms_valid = form.is_valid() & recipient_form.is_valid()  # both, for every message
    if not forms_valid:
        if _wants_json(request):
            errors = {**form.errors.get_json_data(), **recipient_form.errors.get_json_data()}
            return JsonResponse({"errors": errors}, status=400)
        return _manage_page(request, form, recipient_form, status=400)
    try:
        run = validation.validation_run_start(
            values=form.cleaned_data,
            user=request.user,
            test_recipient=recipient_form.cleaned_data["test_recipient"] or "",
            notes=form.notes,
            pk=pk,
        )
    except validation.ValidationNotStarted as refusal:
        if _wants_json(request):
            return JsonResponse({"refused": str(refusal)}, status=429)
        messages.error(request, str(refusal))
        return _manage_page(request, form, recipient_form, status=429)
    if _wants_json(request):
        # The run's steps come with the answer: the page shows them without asking again.
        shown = validation.validation_run_as_dict(run=run)
        return JsonResponse(
            {
                "run": str(run.id),
                "status_url": reverse("smtp_settings:run_status", args=[run.id]),
                "run_url": reverse("smtp_settings:run_detail", args=[run.id]),
                "mark": "",
                "html": render_to_string("smtp_settings/_run.html", {"run": shown}, request),
            },
            status=202,
        )
    return redirect("smtp_settings:run_detail", run_id=run.id)


def _run(run_id: uuid.UUID) -> dict[str, Any]:
    found = get_object_or_404(ValidationRun.objects.select_related("requested_by"), pk=run_id)
    if not found.is_finished and validation.validation_runs_expire_abandoned(run_id=str(run_id)):
        found.refresh_from_db()  # its worker is gone: the page says so at once
    return validation.validation_run_as_dict(run=found)


@administrator_required
@require_GET
def run_status(request: HttpRequest, run_id: uuid.UUID) -> JsonResponse:
    """The run as data, plus ``html``: the same partial the run page renders.

    With ``?seen=<mark>`` (the ``mark`` of the previous answer) it answers once the worker
    has written something newer, or after ``LONG_POLL_SECONDS`` with the run as it is.
    """
    if "seen" in request.GET:
        progress.wait(run_id, seen=request.GET["seen"], timeout=LONG_POLL_SECONDS)
    # Read before the rows: a write after this read changes the mark again, so the next
    # request sees it instead of waiting on a mark that already moved.
    mark = progress.mark(run_id)
    run = _run(run_id)
    html = render_to_string("smtp_settings/_run.html", {"run": run}, request=request)
    return JsonResponse({**run, "mark": mark, "html": html})


@administrator_required
@require_GET
def recent_runs(request: HttpRequest) -> HttpResponse:
    """The recent-validations table alone: the page swaps it in when a run ends
    (``?connection=fallback``: the fallback connection's page's)."""
    fallback = request.GET.get("connection") == "fallback"
    pk = SmtpSettings.FALLBACK_PK if fallback else SmtpSettings.SINGLETON_PK
    return render(
        request,
        "smtp_settings/_recent_runs.html",
        {"runs": validation.validation_recent_runs(connection=pk)},
    )


@administrator_required
@require_GET
def run_detail(request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
    return render(request, "smtp_settings/run_detail.html", {"run": _run(run_id)})


# -- the outbox -------------------------------------------------------------------------

OUTBOX_PAGE_SIZE = 50


@administrator_required
@require_GET
def outbox_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    before = request.GET.get("before", "")
    emails, older = outbox.outbox_page(
        state=state, before=int(before) if before.isdigit() else None, size=OUTBOX_PAGE_SIZE
    )
    # The banners read the same counts: one query for both.
    counts = for_request(request).counts
    return render(
        request,
        "smtp_settings/outbox.html",
        {
            "emails": emails,
            "older": older,
            "paged": bool(before),
            "query": urlencode({"state": state}) if state else "",
            "state": state,
            "states": [(value, label, counts[value]) for value, label in DeliveryState.choices],
        },
    )


@administrator_required
@require_GET
def outbox_message(request: HttpRequest, email_id: int) -> HttpResponse:
    email = get_object_or_404(Email.objects.select_related("delivery"), pk=email_id)
    return render(
        request,
        "smtp_settings/outbox_message.html",
        {
            "email": email,
            "delivery": email.delivery,
            "attempts": outbox.outbox_attempts(email=email),
            "withheld": outbox.outbox_body_withheld(email=email),
        },
    )


@administrator_required
@require_POST
def outbox_action(request: HttpRequest, email_id: int) -> HttpResponse:
    # A message that does not exist is a 404 like its page (and an id beyond the column's
    # range never reaches the services' updates, which SQLite would refuse with an error).
    email_id = get_object_or_404(Email.objects.only("pk"), pk=email_id).pk
    action = request.POST.get("action")
    if action == "retry":
        done = outbox.outbox_retry(email_id=email_id, user=request.user)
        text = (
            "The message will be tried again now."
            if done
            else "Only a deferred, held or failed message can be retried, and not an alert "
            "withdrawn as no longer true."
        )
    elif action == "discard":
        done = outbox.outbox_discard(email_id=email_id, user=request.user)
        text = (
            "The message was discarded."
            if done
            else "Only a message that has not gone can be discarded."
        )
    else:
        return HttpResponse("Unknown action.", status=400)
    (messages.success if done else messages.error)(request, text)
    if request.POST.get("next") == "message":
        return redirect("smtp_settings:outbox_message", email_id=email_id)
    return redirect("smtp_settings:outbox")


@administrator_required
@require_POST
def health_check_start(request: HttpRequest) -> HttpResponse:
    """Run the health check now, in the worker like the daily one."""
    if not health_check.checks_saved_settings(SmtpSettings.load()):
        messages.info(
            request,
            "The health check asks for an OAuth 2.0 token; the saved settings do not use one. "
            "Validate proves them.",
        )
    elif health_check.mail_health_check_request():
        messages.success(
            request, "The health check is running in the background; reload in a few seconds."
        )
    else:
        messages.warning(request, "A health check was started less than a minute ago.")
    return redirect("smtp_settings:manage")
