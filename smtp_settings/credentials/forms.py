"""The Credentials section's forms: each bad input is a message next to its field."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.utils import timezone

from smtp_settings.mail import certificate, microsoft

UPLOAD_LIMIT = certificate.LARGEST_FILE_BYTES


class CertificateCreateForm(forms.Form):
    months = forms.IntegerField(
        label="Valid for (months)",
        min_value=1,
        max_value=certificate.LONGEST_MONTHS,
        initial=certificate.DEFAULT_MONTHS,
        help_text=f"12 by default; at most {certificate.LONGEST_MONTHS}. A reminder comes "
        "before it ends, like a client secret's.",
    )


class CertificateImportForm(forms.Form):
    """A PFX/PKCS#12 with its password, or a PEM holding the certificate and its key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Manage SMTP has a Password field of its own (Basic): one id per input on the page.
        kwargs.setdefault("auto_id", "id_import_%s")
        super().__init__(*args, **kwargs)

    file = forms.FileField(label="Certificate with its private key (.pfx, .p12 or .pem)")
    password = forms.CharField(
        label="Password of the file (or of the key)",
        required=False,
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("file")
        if upload is None:
            return cleaned
        if upload.size > UPLOAD_LIMIT:
            self.add_error(
                "file",
                f"This file is {upload.size // 1024} KB: a certificate with its key is a few "
                "KB. Choose the .pfx or .pem that holds one certificate and its private key.",
            )
            return cleaned
        try:
            cleaned["pair"] = certificate.read(
                upload.read(), password=cleaned.get("password") or ""
            )
        except certificate.CertificateRefused as refused:
            self.add_error("file", str(refused))
        return cleaned


class SecretAddForm(forms.Form):
    value = forms.CharField(
        label="New client secret's Value",
        max_length=1024,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The Value column under Certificates & secrets, shown once when the secret "
        "is created (not its Secret ID).",
    )
    expires_on = forms.DateField(
        label="Its Expires date",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean_value(self) -> str:
        value: str = self.cleaned_data["value"]
        if microsoft.is_guid(value):
            raise forms.ValidationError(
                "This is the Secret ID (a GUID): enter the secret's Value instead."
            )
        return value

    def clean_expires_on(self) -> date:
        expires: date = self.cleaned_data["expires_on"]
        today = timezone.localdate()
        if expires < today:
            raise forms.ValidationError("This date has passed: a secret that expired is refused.")
        limit = microsoft.secret_expires_by(today)
        if expires > limit:
            raise forms.ValidationError(
                f"Entra ID lets a client secret last at most {microsoft.SECRET_LONGEST_MONTHS} "
                f"months, so a new one expires by {limit:%Y-%m-%d}."
            )
        return expires
