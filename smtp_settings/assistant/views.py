"""The Set up Microsoft 365 page: parse the request, call the assistant's services, render.

Every part is a plain form that posts and comes back to the page, so it works without
JavaScript; a check's result shows as it ends (the page polls) or on reload.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from smtp_settings import validation
from smtp_settings.assistant import service
from smtp_settings.assistant.forms import AppForm, MailboxForm, SecretForm, TransportForm
from smtp_settings.assistant.graph_script import GRAPH_SCRIPT_FILENAME
from smtp_settings.assistant.script import SCRIPT_FILENAME, exchange_script_for_run
from smtp_settings.credentials import service as credential_files
from smtp_settings.links import console_url
from smtp_settings.models import AuthType, ValidationRun
from smtp_settings.permissions import administrator_required

PARTS = {"app": 1, "transport": 2, "consent": 3, "secret": 4, "certificate": 4, "mailbox": 5}


def _session_key(request: HttpRequest) -> str | None:
    return request.session.session_key


def _forms(state: service.SetupProgress, data: Any = None, part: str = "") -> dict[str, Any]:
    row = state.row
    initial_app = {"cloud": row.cloud, "tenant": row.tenant, "client_id": row.client_id}
    initial_secret = {"secret_expiration_date": row.secret_expiration_date}
    initial_mailbox = {name: getattr(row, name) for name in service.MAILBOX_FIELDS}
    return {
        "app_form": AppForm(data if part == "app" else None, initial=initial_app),
        "transport_form": TransportForm(
            data if part == "transport" else None, initial={"transport": row.transport}
        ),
        "secret_form": SecretForm(
            data if part == "secret" else None,
            initial=initial_secret,
            secret_held=state.held is not None,
        ),
        "mailbox_form": MailboxForm(
            data if part == "mailbox" else None, initial=initial_mailbox, graph=state.graph
        ),
    }


def _page(request: HttpRequest, forms: dict[str, Any] | None = None, status: int = 200) -> Any:
    state = service.setup_progress(user=request.user, session_key=_session_key(request))
    runs = {
        name: validation.validation_run_as_dict(run=run) if run else None
        for name, run in state.runs.items()
    }
    failed = {
        name: service.setup_failed_step(run=run) if run else "" for name, run in state.runs.items()
    }
    # Registered in the app in Entra as it is shown here: the console's address, not
    # whatever Host this request came with.
    redirect_uri = console_url(reverse("smtp_settings:setup"))
    forms = forms or _forms(state)
    consent_state = _consent_state(request)
    context = {
        "state": state,
        "runs": runs,
        "failed": failed,
        "polling": any(run and not run["finished"] for run in runs.values()),
        "consent_url": (
            state.consent_url(redirect_uri=redirect_uri, state=consent_state)
            if state.app_known
            else ""
        ),
        "redirect_uri": redirect_uri,
        "script": state.script() if state.app_known and state.mailboxes else "",
        "script_filename": _script_filename(state),
        "consent_answer": _consent_answer(request, consent_state),
        # Sent here from an empty Manage SMTP: say why, and where the form is.
        "first_visit": "first" in request.GET,
        "open_steps": _open_steps(state, forms),
        **forms,
    }
    return render(request, "smtp_settings/setup.html", context, status=status)


# The steps each check answers (the token check answers steps 2 to 4 at once).
CHECK_STEPS = {"tenant": (1,), "token": (2, 3, 4), "mailbox": (5,)}
FORM_STEPS = {"app_form": 1, "transport_form": 2, "secret_form": 4, "mailbox_form": 5}


def _script_filename(state: service.SetupProgress) -> str:
    return GRAPH_SCRIPT_FILENAME if state.graph else SCRIPT_FILENAME


def _open_steps(state: service.SetupProgress, forms: dict[str, Any]) -> set[int]:
    """Steps shown in full: those not done, the ones the latest check answered (its result
    is what the administrator is looking for) and any whose form came back with errors.
    A finished step otherwise folds to its title and result."""
    shown = {step for step in range(1, 6) if not state.done.get(step)}
    latest = max(
        ((run.created_at, name) for name, run in state.runs.items() if run is not None),
        default=None,
    )
    if latest is not None:
        shown.update(CHECK_STEPS[latest[1]])
    shown.update(step for name, step in FORM_STEPS.items() if forms[name].errors)
    return shown


def _consent_state(request: HttpRequest) -> str:
    """This session's value for the consent address's ``state``."""
    if "setup_consent_state" not in request.session:
        request.session["setup_consent_state"] = secrets.token_urlsafe(16)
    return request.session["setup_consent_state"]


def _consent_answer(request: HttpRequest, expected_state: str) -> str:
    """Entra's answer when it sends the administrator back from the consent address:
    "granted", "refused" or "" (none, or not an answer to this session's address). Only
    the outcome is shown, never Entra's description: anyone can put text in a link."""
    if not secrets.compare_digest(request.GET.get("state", ""), expected_state):
        return ""
    if request.GET.get("admin_consent") == "True" and "error" not in request.GET:
        return "granted"
    return "refused" if "error" in request.GET or "admin_consent" in request.GET else ""


def _certificate_create(request: HttpRequest) -> HttpResponse:
    """Step 4's "Create a certificate": made and held for this session; the page then shows
    its thumbprint, the .cer to upload in Entra ID and the check."""
    if not request.session.session_key:
        request.session.save()
    try:
        held = service.setup_certificate_create(
            user=request.user, session_key=request.session.session_key or ""
        )
    except service.SetupNotReady as refusal:
        messages.error(request, str(refusal))
        return redirect("smtp_settings:setup")
    messages.success(
        request,
        f"Certificate created, thumbprint {held.thumbprint}. Download its .cer below, upload it "
        "in Entra ID, then check it.",
    )
    return redirect(f"{reverse('smtp_settings:setup')}#step-4")


@administrator_required
@require_GET
def setup_certificate(request: HttpRequest) -> HttpResponse:
    """The public certificate this session's assistant made, as the .cer Entra takes."""
    held = service.setup_secret_read(user=request.user, session_key=_session_key(request))
    if held is None or not held.certificate_pem:
        raise Http404("No certificate is held for this session.")
    body, content_type = credential_files.public_file(held.certificate_pem, "cer")
    response = HttpResponse(body, content_type)
    name = f"sei-administration-{held.thumbprint[:8].lower()}.cer"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@administrator_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("client_secret")
@sensitive_variables("form", "forms", "values", "secret")
def setup(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    part = request.POST.get("part", "")
    if part not in PARTS:
        return HttpResponse("Unknown part of the setup assistant.", status=400)
    if part == "certificate":
        return _certificate_create(request)
    state = service.setup_progress(user=request.user, session_key=_session_key(request))
    forms = _forms(state, request.POST, part)
    form = forms.get(f"{part}_form")
    if form is not None:
        if not form.is_valid():
            return _page(request, forms, status=400)
        values = dict(form.cleaned_data)
        secret = values.pop("client_secret", "")
        service.setup_assistant_save(user=request.user, values=values)
        if secret:
            if not state.app_known:
                messages.error(request, "Fill in step 1 first: a secret belongs to its app.")
                return redirect(f"{reverse('smtp_settings:setup')}#step-1")
            if not request.session.session_key:
                request.session.save()
            service.setup_secret_hold(
                user=request.user,
                session_key=request.session.session_key or "",
                secret=secret,
                login_host=urlsplit(state.token_endpoint).netloc,
                client_id=state.row.client_id,
            )
    check = {"app": "tenant", "consent": "token", "secret": "token", "mailbox": "mailbox"}.get(
        part, ""
    )
    if check and request.POST.get("action") != "save":
        try:
            service.setup_check_start(
                user=request.user, session_key=_session_key(request), check=check
            )
        except (service.SetupNotReady, validation.ValidationNotStarted) as refusal:
            # Said at the top of the page: the page opens there, not at the step.
            messages.error(request, str(refusal))
            return redirect("smtp_settings:setup")
    return redirect(f"{reverse('smtp_settings:setup')}#step-{PARTS[part]}")


@administrator_required
@require_GET
def setup_script(request: HttpRequest) -> HttpResponse:
    """The Exchange Online PowerShell, as a .ps1 file."""
    state = service.setup_progress(user=request.user, session_key=_session_key(request))
    if not state.app_known or not state.mailboxes:
        messages.error(request, "Fill in steps 1 and 5 first: the script needs their values.")
        return redirect("smtp_settings:setup")
    response = HttpResponse(state.script(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_script_filename(state)}"'
    return response


@administrator_required
@require_GET
def run_script(request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
    """The assistant's Exchange Online PowerShell for the values a Validate run checked,
    offered where its diagnosis is a fix the script does whole."""
    run = get_object_or_404(ValidationRun, pk=run_id)
    if run.candidate.get("auth_type") != AuthType.OAUTH2:
        raise Http404("Only an OAuth 2.0 run has an Exchange script.")
    text = exchange_script_for_run(
        candidate=run.candidate, outputs=run.outputs, written_on=timezone.localdate()
    )
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{SCRIPT_FILENAME}"'
    return response


@administrator_required
@require_POST
def setup_use(request: HttpRequest) -> HttpResponse:
    """Fill Manage SMTP with the assistant's values and validate them; nothing is saved."""
    try:
        run = service.setup_use_settings(user=request.user, session_key=_session_key(request))
    except (service.SetupNotReady, validation.ValidationNotStarted) as refusal:
        messages.error(request, str(refusal))
        return redirect("smtp_settings:setup")
    return redirect(f"{reverse('smtp_settings:manage')}?from=setup&run={run.id}#validation")


@administrator_required
@require_POST
def setup_restart(request: HttpRequest) -> HttpResponse:
    service.setup_assistant_restart(user=request.user)
    messages.success(request, "The setup assistant starts over; nothing in Manage SMTP changed.")
    return redirect("smtp_settings:setup")
