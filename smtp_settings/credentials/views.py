"""The Credentials section of Manage SMTP: parse the request, call the service, answer.

The forms show on Manage SMTP; a refused one is shown there again with its field errors.
Downloads are the public certificate only: no page or file ever holds the private key.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from smtp_settings import validation
from smtp_settings.credentials import service
from smtp_settings.credentials.forms import (
    CertificateCreateForm,
    CertificateImportForm,
    SecretAddForm,
)
from smtp_settings.credentials.model import Credential, Kind
from smtp_settings.permissions import administrator_required

_MANAGE = "smtp_settings:manage"


def _refused_page(request: HttpRequest, **forms: object) -> HttpResponse:
    # Imported here: the Manage SMTP page module imports this section's forms.
    from smtp_settings.views import manage_page_with

    return manage_page_with(request, credential_forms=forms, status=400)


def _done(request: HttpRequest, text: str) -> HttpResponse:
    messages.success(request, text)
    return redirect(f"{_reverse_manage()}#credentials")


def _reverse_manage() -> str:
    from django.urls import reverse

    return reverse(_MANAGE)


@administrator_required
@require_POST
def certificate_create(request: HttpRequest) -> HttpResponse:
    form = CertificateCreateForm(request.POST)
    if not form.is_valid():
        return _refused_page(request, create=form)
    try:
        made = service.certificate_create(months=form.cleaned_data["months"], user=request.user)
    except service.CredentialRefused as refused:
        form.add_error("months", str(refused))
        return _refused_page(request, create=form)
    return _done(
        request,
        f"Certificate created ({made.get_role_display().lower()}), thumbprint "
        f"{made.thumbprint}. Download its .cer and upload it in Entra ID under Certificates "
        "& secrets > Certificates > Upload certificate; then Validate it here.",
    )


@administrator_required
@require_POST
@sensitive_post_parameters("password")
@sensitive_variables("form")
def certificate_import(request: HttpRequest) -> HttpResponse:
    form = CertificateImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _refused_page(request, upload=form)
    try:
        made = service.certificate_import(pair=form.cleaned_data["pair"], user=request.user)
    except service.CredentialRefused as refused:
        form.add_error("file", str(refused))
        return _refused_page(request, upload=form)
    return _done(
        request,
        f"Certificate imported ({made.get_role_display().lower()}), thumbprint "
        f"{made.thumbprint}. Make sure Entra ID has it under Certificates & secrets.",
    )


@administrator_required
@require_POST
@sensitive_post_parameters("value")
@sensitive_variables("form")
def secret_add(request: HttpRequest) -> HttpResponse:
    form = SecretAddForm(request.POST)
    if not form.is_valid():
        return _refused_page(request, secret=form)
    try:
        added = service.secret_add(
            value=form.cleaned_data["value"],
            expires_on=form.cleaned_data["expires_on"],
            user=request.user,
        )
    except service.CredentialRefused as refused:
        form.add_error("value", str(refused))
        return _refused_page(request, secret=form)
    return _done(request, f"Client secret added ({added.get_role_display().lower()}).")


@administrator_required
@require_POST
def credential_validate(request: HttpRequest, credential_id: int) -> HttpResponse:
    """Validate the saved settings with this credential (not the one in use)."""
    try:
        run = validation.validation_run_start(
            values={}, user=request.user, credential_id=credential_id
        )
    except validation.ValidationNotStarted as refusal:
        messages.error(request, str(refusal))
        return redirect(f"{_reverse_manage()}#credentials")
    return redirect("smtp_settings:run_detail", run_id=run.id)


@administrator_required
@require_POST
def credential_promote(request: HttpRequest, credential_id: int) -> HttpResponse:
    try:
        chosen = service.credential_promote(credential_id=credential_id, user=request.user)
    except service.CredentialRefused as refused:
        messages.error(request, str(refused))
        return redirect(f"{_reverse_manage()}#credentials")
    return _done(
        request,
        f"{chosen.name.capitalize()} is now the credential in use. The old one stays as the "
        "fallback: remove it here once you deleted it in Entra ID.",
    )


@administrator_required
@require_POST
def credential_remove(request: HttpRequest, credential_id: int) -> HttpResponse:
    try:
        todo = service.credential_remove(credential_id=credential_id, user=request.user)
    except service.CredentialRefused as refused:
        messages.error(request, str(refused))
        return redirect(f"{_reverse_manage()}#credentials")
    return _done(request, f"Credential removed. {todo}")


@administrator_required
@require_GET
def certificate_download(request: HttpRequest, credential_id: int, form: str) -> HttpResponse:
    """The public certificate, as .cer (DER, what Entra's upload takes) or .pem."""
    found = get_object_or_404(Credential, pk=credential_id, kind=Kind.CERTIFICATE)
    body, content_type = service.public_file(found.certificate_pem, form)
    response = HttpResponse(body, content_type=content_type)
    name = f"sei-administration-{found.thumbprint[:8].lower()}.{form}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
