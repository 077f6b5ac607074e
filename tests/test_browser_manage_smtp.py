"""An administrator in a real browser: gear icon, Manage SMTP, fill, save, reload."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from smtp_settings.models import SmtpSettings

from .browser import sign_in
from .conftest import CLIENT_ID, CLIENT_SECRET, TENANT_ID
from .sandbox.world import SECRET_EXPIRES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_admin(transactional_db: Any) -> User:
    return User.objects.create_superuser("ops", "ops@contoso.example", "a long passphrase 7")


def test_administrator_configures_oauth_smtp_in_the_browser(
    live_server: Any,
    page: Any,
    browser_admin: User,
) -> None:
    sign_in(page, live_server.url, "ops", "a long passphrase 7")

    page.get_by_role("link", name="Administration").click()
    page.wait_for_url(f"{live_server.url}/administration/")
    page.get_by_role("link", name="Manage SMTP").click()
    page.wait_for_url(f"{live_server.url}/administration/smtp/")

    # Defaults of a new configuration.
    assert page.get_by_label("Port", exact=True).input_value() == "587"
    assert page.get_by_label("Use SSL/TLS", exact=True).is_checked()
    assert (
        page.get_by_label("Scopes", exact=True).input_value()
        == "https://outlook.office365.com/.default"
    )
    # Basic fields are hidden while OAuth 2.0 is chosen.
    assert page.locator("#row_username").is_hidden()

    page.get_by_label("SMTP Server", exact=True).fill("smtp.office365.com")
    page.get_by_label("Sender Email", exact=True).fill("notifications@contoso.example")
    page.get_by_label("Port", exact=True).fill("587")
    page.get_by_label("Authentication Type", exact=True).select_option("oauth2")
    page.get_by_label("Client ID", exact=True).fill(CLIENT_ID)
    page.get_by_label("Client Secret", exact=True).fill(CLIENT_SECRET)
    page.get_by_label("Secret Expiration Alert", exact=True).check()
    page.get_by_label("Secret Expiration Date", exact=True).fill(SECRET_EXPIRES)
    page.get_by_label("Directory (tenant) ID", exact=True).fill(TENANT_ID)
    expected_endpoint = f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/token"
    assert page.get_by_label("Token Endpoint", exact=True).input_value() == expected_endpoint
    page.get_by_label("Scopes", exact=True).fill("https://outlook.office365.com/.default")
    page.get_by_label("Use SSL/TLS", exact=True).check()
    page.get_by_label("Use sender email", exact=True).check()
    page.get_by_role("button", name="Save").click()

    page.get_by_text("SMTP settings saved.").wait_for()
    page.reload()

    assert page.get_by_label("SMTP Server", exact=True).input_value() == "smtp.office365.com"
    assert (
        page.get_by_label("Sender Email", exact=True).input_value()
        == "notifications@contoso.example"
    )
    assert page.get_by_label("Port", exact=True).input_value() == "587"
    assert page.get_by_label("Authentication Type", exact=True).input_value() == "oauth2"
    assert page.get_by_label("Client ID", exact=True).input_value() == CLIENT_ID
    assert page.get_by_label("Client Secret", exact=True).input_value() == ""
    assert page.get_by_label("Secret Expiration Alert", exact=True).is_checked()
    assert page.get_by_label("Secret Expiration Date", exact=True).input_value() == SECRET_EXPIRES
    assert page.get_by_label("Token Endpoint", exact=True).input_value() == expected_endpoint
    assert page.get_by_label("Use sender email", exact=True).is_checked()
    assert page.get_by_text("A client secret is stored").is_visible()
    assert CLIENT_SECRET not in page.content()
    assert SmtpSettings.load().client_secret == CLIENT_SECRET


@pytest.fixture
def manage_page(live_server: Any, page: Any, browser_admin: User) -> Any:
    """Signed in as an administrator, on Manage SMTP."""
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.goto(f"{live_server.url}/administration/smtp/")
    return page


def test_switching_to_basic_shows_username_and_password_only(manage_page: Any) -> None:
    page = manage_page
    page.get_by_label("Authentication Type", exact=True).select_option("basic")
    assert page.get_by_label("Username", exact=True).is_visible()
    assert page.locator("#row_client_id").is_hidden()
    page.get_by_label("Authentication Type", exact=True).select_option("none")
    assert page.locator("#row_username").is_hidden()


def test_a_field_error_appears_next_to_the_field(manage_page: Any) -> None:
    page = manage_page
    page.get_by_label("SMTP Server", exact=True).fill("smtp://smtp.office365.com:587")
    page.get_by_role("button", name="Save").click()
    error = page.locator("#row_smtp_server .error")
    error.wait_for()
    assert "without a scheme" in error.inner_text()
    assert not SmtpSettings.objects.exists()


def test_validate_after_the_endpoint_moved_says_one_thing_at_the_secret(
    live_server: Any, page: Any, browser_admin: User, oauth_form_data: dict[str, Any]
) -> None:
    from .test_sending import save

    save(oauth_form_data)
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.goto(f"{live_server.url}/administration/smtp/")
    assert page.locator("#client_secret_status").is_visible()
    endpoint = page.get_by_label("Token Endpoint", exact=True)
    endpoint.fill(endpoint.input_value().replace(TENANT_ID, "contoso.example"))
    page.get_by_role("button", name="Validate").click()
    page.locator("#row_client_secret .error").wait_for()
    assert "again" in page.locator("#row_client_secret .error").inner_text()
    assert page.locator("#client_secret_status").is_hidden()


def test_before_save_the_page_says_which_change_would_clear_the_stored_secret(
    live_server: Any, page: Any, browser_admin: User, oauth_form_data: dict[str, Any]
) -> None:
    from .test_sending import save

    save(oauth_form_data)
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.goto(f"{live_server.url}/administration/smtp/")
    note = page.locator("#secret-will-clear")
    assert note.is_hidden()  # nothing changed yet: the stored values match
    server = page.get_by_label("SMTP Server", exact=True)
    stored_server = server.input_value()
    # Basic against another server: the OAuth secret stays bound to the old one.
    page.get_by_label("Authentication Type", exact=True).select_option("basic")
    assert note.is_hidden()  # switching the type alone clears nothing
    server.fill("smtp.other.example")
    assert note.is_visible()
    assert "clears the stored client secret" in note.inner_text()
    assert "SMTP Server" in note.inner_text()
    # Its field is hidden with Basic: the note does not ask to type it there.
    assert "does not use it" in note.inner_text() and "enter it again" not in note.inner_text()
    port = page.get_by_label("Port", exact=True)
    stored_port = port.input_value()
    port.fill("2525")
    assert "other values of SMTP Server and Port, and" in note.inner_text()
    port.fill(stored_port)
    server.fill(stored_server.upper())  # the same host: no change
    assert note.is_hidden()
    page.get_by_label("Authentication Type", exact=True).select_option("oauth2")
    page.get_by_label("Client ID", exact=True).fill("11111111-2222-3333-4444-555555555555")
    assert note.is_visible() and "Client ID" in note.inner_text()
    page.get_by_label("Client Secret", exact=True).fill("a new secret typed")
    assert note.is_hidden()  # what is typed replaces it
