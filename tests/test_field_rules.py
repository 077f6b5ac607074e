"""Every field rule of Manage SMTP: what is accepted, what is refused and with which message."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from smtp_settings.forms import SmtpSettingsForm
from smtp_settings.models import SmtpSettings

from .conftest import CLIENT_ID, TENANT_ID

pytestmark = pytest.mark.django_db


def submit(data: dict[str, Any], **changes: Any) -> SmtpSettingsForm:
    form = SmtpSettingsForm({**data, **changes}, instance=SmtpSettings.load())
    form.is_valid()
    return form


def test_complete_oauth_settings_are_accepted(oauth_form_data: dict[str, Any]) -> None:
    form = submit(oauth_form_data)
    assert form.errors == {}
    assert form.warnings == []


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("smtp://smtp.office365.com", "without a scheme"),
        ("smtp.office365.com:587", "Port field"),
        ("smtp.office365.com/mail", "without a path"),
        ("smtp office365.com", "cannot contain spaces"),
        ("smtp_office365!.com", "not a valid host name"),
        ("-bad-.example.com", "not a valid host name"),
    ],
)
def test_smtp_server_must_be_a_bare_host_name(
    oauth_form_data: dict[str, Any], value: str, fragment: str
) -> None:
    form = submit(oauth_form_data, smtp_server=value)
    assert fragment in " ".join(form.errors["smtp_server"])


@pytest.mark.parametrize(
    "value", ["smtp.office365.com", "127.0.0.1", "::1", "2001:db8::25", "mail"]
)
def test_smtp_server_accepts_host_names_and_ip_addresses(
    oauth_form_data: dict[str, Any], value: str
) -> None:
    assert "smtp_server" not in submit(oauth_form_data, smtp_server=value).errors


@pytest.mark.parametrize("value", ["0", "65536", "-1", "587.5", "abc", ""])
def test_port_must_be_between_1_and_65535(oauth_form_data: dict[str, Any], value: str) -> None:
    assert "port" in submit(oauth_form_data, port=value).errors


@pytest.mark.parametrize("value", ["1", "25", "465", "587", "65535"])
def test_port_accepts_the_whole_range(oauth_form_data: dict[str, Any], value: str) -> None:
    assert "port" not in submit(oauth_form_data, port=value).errors


@pytest.mark.parametrize(
    "value",
    [
        "not-an-address",
        "a@b",
        "notifications@contoso.example\r\nBcc: victim@example.org",
        "notifications@contoso.example\n",
        "\rnotifications@contoso.example",
        "notif\x00ications@contoso.example",
    ],
)
def test_sender_email_rejects_invalid_and_header_injection(
    oauth_form_data: dict[str, Any], value: str
) -> None:
    assert "sender_email" in submit(oauth_form_data, sender_email=value).errors


def test_header_injection_gets_a_message_that_names_line_breaks(
    oauth_form_data: dict[str, Any],
) -> None:
    form = submit(oauth_form_data, sender_email="a@contoso.example\r\nBcc: x@example.org")
    assert "line breaks" in form.errors["sender_email"][0]


def test_username_rejects_line_breaks(oauth_form_data: dict[str, Any]) -> None:
    form = submit(oauth_form_data, auth_type="basic", username="me\r\nRCPT TO:<x>", password="pw")
    assert "line breaks" in form.errors["username"][0]


@pytest.mark.parametrize(
    "value",
    ["not-a-guid", "3fa85f64-5717-4562-b3fc", "3fa85f645717-4562-b3fc-2c963f66afa6x", "secret-id"],
)
def test_client_id_must_be_a_guid(oauth_form_data: dict[str, Any], value: str) -> None:
    form = submit(oauth_form_data, client_id=value)
    assert "GUID" in form.errors["client_id"][0]


def test_token_endpoint_must_be_https(oauth_form_data: dict[str, Any]) -> None:
    form = submit(
        oauth_form_data,
        token_endpoint=f"http://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/token",
    )
    assert "https://" in form.errors["token_endpoint"][0]


@pytest.mark.parametrize(
    ("tenant", "fragment"),
    [
        ("<TENANT_ID>", "placeholder"),
        ("TENANT_ID", "placeholder"),
        ("{tenant}", "placeholder"),
        ("common", "shared endpoint"),
        ("organizations", "shared endpoint"),
        ("consumers", "shared endpoint"),
        ("not a tenant", "GUID"),
    ],
)
def test_token_endpoint_needs_a_real_tenant(
    oauth_form_data: dict[str, Any], tenant: str, fragment: str
) -> None:
    form = submit(
        oauth_form_data,
        token_endpoint=f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
    )
    assert fragment in " ".join(form.errors["token_endpoint"])


@pytest.mark.parametrize(
    "url",
    [
        f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/token",
        f"https://login.microsoftonline.com/{TENANT_ID}",
        f"https://login.microsoftonline.com/{TENANT_ID}/v2.0/.well-known/openid-configuration",
    ],
)
def test_microsoft_token_endpoint_must_have_the_v2_shape(
    oauth_form_data: dict[str, Any], url: str
) -> None:
    form = submit(oauth_form_data, token_endpoint=url)
    assert "/oauth2/v2.0/token" in form.errors["token_endpoint"][0]


@pytest.mark.parametrize(
    "url",
    [
        f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/token",
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
        f"https://login.microsoftonline.us/{TENANT_ID}/oauth2/v2.0/token",
        f"https://127.0.0.1:8443/{TENANT_ID}/oauth2/v2.0/token",
        "https://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/token",
    ],
)
def test_token_endpoint_accepts_real_tenants_and_allowed_hosts(
    oauth_form_data: dict[str, Any], url: str, settings: Any
) -> None:
    settings.SMTP_OAUTH_AUTHORITY_HOSTS = ["127.0.0.1:8443"]
    assert "token_endpoint" not in submit(oauth_form_data, token_endpoint=url).errors


@pytest.mark.parametrize(
    ("tenant", "words"),
    [
        ("some-tenant", "Directory (tenant) ID is a GUID"),
        ("common", "shared endpoint"),
        ("organizations", "shared endpoint"),
        ("%3CTENANT_ID%3E", "GUID"),
        ("TENANT_ID", "placeholder"),
    ],
)
def test_an_allowed_token_host_gets_the_same_tenant_rule_as_microsofts(
    oauth_form_data: dict[str, Any], settings: Any, tenant: str, words: str
) -> None:
    settings.SMTP_OAUTH_AUTHORITY_HOSTS = ["127.0.0.1:8443"]
    url = f"https://127.0.0.1:8443/{tenant}/oauth2/v2.0/token"
    form = submit(oauth_form_data, token_endpoint=url)
    assert words in form.errors["token_endpoint"][0]


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        ([], "https://login.example.org/tenant/oauth2/v2.0/token"),
        (["127.0.0.1:9443"], "https://127.0.0.1:8443/tenant/oauth2/v2.0/token"),
    ],
)
def test_token_endpoint_elsewhere_than_microsoft_needs_the_operator(
    oauth_form_data: dict[str, Any], settings: Any, allowed: list[str], url: str
) -> None:
    settings.SMTP_OAUTH_AUTHORITY_HOSTS = allowed
    form = submit(oauth_form_data, token_endpoint=url)
    assert "SMTP_OAUTH_AUTHORITY_HOSTS" in form.errors["token_endpoint"][0]


def test_tenant_id_fills_the_global_token_endpoint(oauth_form_data: dict[str, Any]) -> None:
    form = submit(oauth_form_data, token_endpoint="", tenant_id=TENANT_ID)
    assert form.errors == {}
    assert form.cleaned_data["token_endpoint"] == (
        f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/token"
    )


def test_tenant_id_placeholder_is_refused(oauth_form_data: dict[str, Any]) -> None:
    form = submit(oauth_form_data, token_endpoint="", tenant_id="<TENANT_ID>")
    assert "placeholder" in form.errors["tenant_id"][0]


@pytest.mark.parametrize(
    "scopes",
    [
        "https://outlook.office365.com/SMTP.SendAsApp",
        "https://outlook.office365.com/.default SMTP.Send",
        "   ",
    ],
)
def test_scopes_must_each_end_in_default(oauth_form_data: dict[str, Any], scopes: str) -> None:
    assert "scopes" in submit(oauth_form_data, scopes=scopes).errors


def test_scope_message_names_the_entra_error(oauth_form_data: dict[str, Any]) -> None:
    form = submit(oauth_form_data, scopes="https://outlook.office365.com/SMTP.SendAsApp")
    assert "AADSTS1002012" in form.errors["scopes"][0]


def test_several_default_scopes_separated_by_spaces_are_accepted(
    oauth_form_data: dict[str, Any],
) -> None:
    scopes = "https://outlook.office365.com/.default  api://other/.default"
    assert "scopes" not in submit(oauth_form_data, scopes=scopes).errors


def test_expiration_date_required_when_the_alert_is_on(oauth_form_data: dict[str, Any]) -> None:
    form = submit(oauth_form_data, secret_expiration_date="")
    assert "secret_expiration_date" in form.errors


def test_expiration_date_optional_when_the_alert_is_off(oauth_form_data: dict[str, Any]) -> None:
    data = {**oauth_form_data, "secret_expiration_date": ""}
    del data["secret_expiration_alert"]
    assert submit(data).errors == {}


def test_past_expiration_date_is_accepted_with_a_warning(oauth_form_data: dict[str, Any]) -> None:
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    form = submit(oauth_form_data, secret_expiration_date=yesterday)
    assert form.errors == {}
    # Saved, the expired-secret banner says it (tests/test_views.py); Validate says it here.
    assert not any("expired" in warning for warning in form.warnings)
    data = {**oauth_form_data, "secret_expiration_date": yesterday}
    validating = SmtpSettingsForm(data, instance=SmtpSettings.load(), for_validate=True)
    assert validating.is_valid(), validating.errors
    assert any("expired" in warning for warning in validating.warnings)


def test_office365_on_port_465_warns_without_blocking(oauth_form_data: dict[str, Any]) -> None:
    form = submit(oauth_form_data, port="465")
    assert form.errors == {}
    assert any("465" in warning for warning in form.warnings)


def test_authentication_without_tls_is_refused(oauth_form_data: dict[str, Any]) -> None:
    data = dict(oauth_form_data)
    del data["use_ssl_tls"]
    form = submit(data)
    assert "never sent over an unencrypted connection" in form.errors["use_ssl_tls"][0]
    basic = submit(data, auth_type="basic", username="relay", password="pw")
    assert "use_ssl_tls" in basic.errors


def test_a_relay_without_authentication_may_go_without_tls(
    oauth_form_data: dict[str, Any],
) -> None:
    data = {**oauth_form_data, "auth_type": "none"}
    del data["use_ssl_tls"]
    form = submit(data)
    assert form.errors == {}
    assert any("STARTTLS" in warning for warning in form.warnings)


def test_other_servers_on_465_do_not_warn(oauth_form_data: dict[str, Any]) -> None:
    assert submit(oauth_form_data, smtp_server="mail.example.org", port="465").warnings == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("smtp_server", "a" * 300),
        ("sender_email", "a" * 250 + "@contoso.example"),
        ("client_secret", "s" * 2000),
        ("scopes", "https://outlook.office365.com/.default " * 40),
        ("token_endpoint", "https://login.example.org/" + "a" * 600),
    ],
)
def test_over_long_input_gets_a_message(
    oauth_form_data: dict[str, Any], field: str, value: str
) -> None:
    assert field in submit(oauth_form_data, **{field: value}).errors


@pytest.mark.parametrize(
    ("field", "value"),
    [("port", ["587", "25"]), ("auth_type", "kerberos"), ("secret_expiration_date", "31/13/2026")],
)
def test_wrong_types_get_a_message(oauth_form_data: dict[str, Any], field: str, value: Any) -> None:
    assert field in submit(oauth_form_data, **{field: value}).errors


@pytest.mark.parametrize(
    "field", ["smtp_server", "sender_email", "port", "client_id", "token_endpoint", "scopes"]
)
def test_required_fields_for_oauth(oauth_form_data: dict[str, Any], field: str) -> None:
    assert field in submit(oauth_form_data, **{field: ""}).errors


def test_first_oauth_save_requires_the_client_secret(oauth_form_data: dict[str, Any]) -> None:
    assert "client_secret" in submit(oauth_form_data, client_secret="").errors


def test_basic_needs_username_and_password(oauth_form_data: dict[str, Any]) -> None:
    form = submit(oauth_form_data, auth_type="basic")
    assert {"username", "password"} <= set(form.errors)


def test_fields_of_other_auth_types_are_neither_required_nor_checked(
    oauth_form_data: dict[str, Any],
) -> None:
    form = submit(
        oauth_form_data,
        auth_type="none",
        client_id="garbage",
        client_secret="",
        token_endpoint="",
        scopes="",
        secret_expiration_date="",
    )
    assert form.errors == {}


def test_changing_the_client_id_requires_the_secret_again(
    oauth_form_data: dict[str, Any],
) -> None:
    first = submit(oauth_form_data)
    from smtp_settings.services import smtp_settings_save

    smtp_settings_save(values=first.cleaned_data, user=None)
    other_app = "0f0e0d0c-0b0a-0908-0706-050403020100"
    form = submit(oauth_form_data, client_id=other_app, client_secret="")
    assert "Client ID" in form.errors["client_secret"][0]
    assert submit(oauth_form_data, client_id=CLIENT_ID, client_secret="").errors == {}
