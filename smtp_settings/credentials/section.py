"""What the Credentials section of Manage SMTP shows: the credentials and its forms."""

from __future__ import annotations

from typing import Any

from smtp_settings.credentials.forms import (
    CertificateCreateForm,
    CertificateImportForm,
    SecretAddForm,
)
from smtp_settings.credentials.model import OAUTH2, Role
from smtp_settings.credentials.service import ENTRA_PLACE, credentials_for_page
from smtp_settings.models import SmtpSettings


def credentials_section(stored: SmtpSettings, forms: dict[str, Any]) -> dict[str, Any]:
    """The template's context: ``forms`` holds a refused form to show with its errors."""
    listed = credentials_for_page(stored)
    return {
        "credentials": listed,
        "credentials_open": bool(stored.is_stored and stored.auth_type == OAUTH2),
        "credentials_full": len(listed) >= len(Role.values),
        "credential_refused": next((c for c in listed if c.refused_at), None),
        "entra_place": ENTRA_PLACE,
        "create_form": forms.get("create") or CertificateCreateForm(),
        "upload_form": forms.get("upload") or CertificateImportForm(),
        "secret_form": forms.get("secret") or SecretAddForm(),
    }
