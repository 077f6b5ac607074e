"""The catalogue of inputs Manage SMTP refuses: each one gets its message next to its field
on Save, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from smtp_settings.models import SmtpSettings

pytestmark = pytest.mark.django_db

CATALOGUE: list[tuple[str, str, str]] = [
    # SMTP Server
    ("smtp_server", "smtp://smtp.office365.com", "without a scheme"),
    ("smtp_server", "smtp.office365.com:587", "Port field"),
    ("smtp_server", "smtp.office365.com/x", "without a path"),
    ("smtp_server", "smtp office365.com", "cannot contain spaces"),
    ("smtp_server", "[::1]", "without brackets"),
    ("smtp_server", "[2001:db8::1]", "without brackets"),
    ("smtp_server", "12345", "not a valid host name"),
    ("smtp_server", "10.0.0", "not a valid host name"),
    ("smtp_server", "bad_host!.example", "not a valid host name"),
    ("smtp_server", "-lead.example", "not a valid host name"),
    ("smtp_server", "smtp.exämple.com", "ASCII form"),
    ("smtp_server", "a" * 64 + ".example", "not a valid host name"),
    ("smtp_server", "", "required"),
    ("smtp_server", "0.0.0.0", "not an address"),
    ("smtp_server", "255.255.255.255", "not an address"),
    ("smtp_server", "fe80::1%eth0", "zone"),
    # Sender Email
    ("sender_email", "not-an-address", "valid email"),
    ("sender_email", '"a b"@contoso.example', "without quotes"),
    ("sender_email", '"x>"@contoso.example', "without quotes"),
    ("sender_email", "a..b@contoso.example", "valid email"),
    ("sender_email", "notify@contoso.example\r\nBcc: x@evil.example", "control characters"),
    ("sender_email", "notify\u2028@contoso.example", "control characters"),
    ("sender_email", "nötify@contoso.example", "ASCII form"),
    ("sender_email", "notify@exämple.com", "ASCII form"),
    ("sender_email", "", "required"),
    # Port
    ("port", "0", "greater than or equal to 1"),
    ("port", "65536", "less than or equal to 65535"),
    ("port", "-25", "greater than or equal to 1"),
    ("port", "five", "whole number"),
    # Client ID
    ("client_id", "my-app", "is a GUID"),
    ("client_id", "3fa85f64-5717-4562-b3fc-2c963f66afa", "is a GUID"),
    ("client_id", "", "required for OAuth 2.0"),
    # Token Endpoint
    ("token_endpoint", "http://login.microsoftonline.com/t/oauth2/v2.0/token", "https://"),
    ("token_endpoint", "https://evil.example/t/oauth2/v2.0/token", "not a Microsoft login host"),
    (
        "token_endpoint",
        "https://user:pw@login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token",
        "user name or password",
    ),
    (
        "token_endpoint",
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token?x=1",
        "no query",
    ),
    (
        "token_endpoint",
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token#f",
        "no query",
    ),
    ("token_endpoint", "https://login.microsoftonline.com/common/oauth2/v2.0/token", "shared"),
    ("token_endpoint", "https://127.0.0.1:99999/t/oauth2/v2.0/token", "port"),
    ("token_endpoint", "https://127.0.0.1:8473:1/t/oauth2/v2.0/token", "port"),
    ("token_endpoint", "${jndi:x}", "valid url"),
    (
        "token_endpoint",
        "https://login.microsoftonline.com:8629/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token",
        "form",
    ),
    (
        "token_endpoint",
        "https://login.microsoftonline.com/<TENANT_ID>/oauth2/v2.0/token",
        "placeholder",
    ),
    # Scopes
    ("scopes", "https://outlook.office365.com/", "/.default"),
    ("scopes", "https://outlook.office365.com/.default\nhttps://x/.default", "line breaks"),
    ("scopes", "<script>https://outlook.office365.com/.default", "markup"),
    ("scopes", '"https://outlook.office365.com/.default"', "markup"),
    ("scopes", "   ", "required for OAuth 2.0"),
    ("scopes", "/.default", "resource in front"),
    # Directory (tenant) ID
    ("tenant_id", "common", "shared endpoint"),
    ("tenant_id", "<TENANT_ID>", "placeholder"),
    ("tenant_id", "not a tenant", "GUID"),
    # Secret Expiration Date
    ("secret_expiration_date", "31/12/2026", "valid date"),
    ("secret_expiration_date", "", "Enter the date the secret expires"),
    ("secret_expiration_date", "0001-01-01", "between 2000 and 2100"),
    ("secret_expiration_date", "9999-12-31", "between 2000 and 2100"),
    # Username and Password (Basic)
    ("password", "Grüße-2026", "Only ASCII"),
    # Alert recipients
    ("alert_recipients", "it@contoso.example bob@contoso.example", "not one address"),
    ("alert_recipients", "it@contoso.example, not-an-address", "not a valid e-mail address"),
    ("alert_recipients", '"x y"@contoso.example', "not one address"),
    ("alert_recipients", ", ".join(f"a{n}@contoso.example" for n in range(21)), "At most 20"),
    ("username", "ünïcode@contoso.example", "Only ASCII"),
    ("username", "relay\r\nRSET", "Only ASCII"),
    # Use SSL/TLS with credentials
    ("use_ssl_tls", "", "never sent over an unencrypted connection"),
]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    CATALOGUE,
    ids=[f"{n:02d}-{field}" for n, (field, _, _) in enumerate(CATALOGUE)],
)
def test_bad_input_is_refused_next_to_its_field_and_nothing_is_stored(
    admin_client: Client, oauth_form_data: dict[str, Any], field: str, value: str, fragment: str
) -> None:
    data = {**oauth_form_data, field: value}
    if field in ("username", "password"):
        data.update(auth_type="basic", username=data.get("username") or "relay@contoso.example")
        data[field] = value
    response = admin_client.post(reverse("smtp_settings:manage"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert fragment.lower() in " ".join(errors[field]).lower(), errors[field]
    page = response.content.decode()
    assert f'id="row_{field}"' in page and "Nothing was saved" in page
    assert not SmtpSettings.objects.exists()


def test_the_catalogue_is_large_enough() -> None:
    assert len(CATALOGUE) >= 40
