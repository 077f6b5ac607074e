"""Microsoft Graph on Manage SMTP and the fallback connection's page, in a real browser on
the sandbox (issue 20, found by a clean-clone trial): what Graph fixes is shown as fact and
not asked, what is hidden is not recorded, runs and saves belong to their connection, and
the end of Basic authentication is said once."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from smtp_settings.models import SmtpSettings

from .browser import out_of_reach, sign_in
from .sandbox.world import CLIENT_ID, CLIENT_SECRET, SECRET_EXPIRES, SENDER
from .test_browser_setup_assistant import CHECK_TIMEOUT, console

__all__ = ["console"]  # the fixture: a worker, the sandbox and a signed-in administrator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The authentication types the select shows (a disabled option is shown all the same).
OFFERED_AUTH_TYPES = (
    "() => [...document.querySelectorAll('#id_auth_type option')]"
    ".filter((o) => !o.hidden).map((o) => o.value)"
)


@pytest.fixture
def manage_page(live_server: Any, page: Any, sandbox: Any, settings: Any) -> Any:
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.goto(f"{live_server.url}/administration/smtp/")
    return page


def fill_graph(page: Any, sandbox: Any) -> None:
    page.get_by_label("Microsoft Graph (OAuth 2.0)").check()
    page.get_by_label("Graph Host", exact=True).fill(sandbox.graph.host)
    page.get_by_label("Sender Email", exact=True).fill(SENDER)
    page.get_by_label("Client ID", exact=True).fill(CLIENT_ID)
    page.get_by_label("Client Secret", exact=True).fill(CLIENT_SECRET)
    page.get_by_label("Secret Expiration Date", exact=True).fill(SECRET_EXPIRES)
    page.get_by_label("Token Endpoint", exact=True).fill(sandbox.form_values()["token_endpoint"])


def test_with_graph_scopes_and_other_sign_ins_go_and_hidden_fields_are_not_recorded(
    manage_page: Any, sandbox: Any
) -> None:
    page = manage_page
    assert page.locator("#row_scopes").is_visible()
    assert page.evaluate(OFFERED_AUTH_TYPES) == ["oauth2", "basic", "none"]
    page.get_by_label("Authentication Type", exact=True).select_option("basic")

    fill_graph(page, sandbox)
    # Graph signs in with OAuth 2.0 only: nothing else is offered, and its fields are back.
    assert page.evaluate(OFFERED_AUTH_TYPES) == ["oauth2"]
    assert page.get_by_label("Authentication Type", exact=True).input_value() == "oauth2"
    assert page.locator("#graph_auth_note").is_visible()
    assert page.locator("#row_username").is_hidden()
    # Scopes is not Graph's to choose: its fixed scope is stated instead.
    assert page.locator("#row_scopes").is_hidden()
    fact = page.locator("#row_graph_scope")
    assert fact.is_visible() and "https://graph.microsoft.com/.default" in fact.inner_text()
    for row in ("smtp_server", "port", "use_ssl_tls"):
        assert page.locator(f"#row_{row}").is_hidden(), row
    # What Validate will do is said in Graph's words, not SMTP's.
    assert not page.get_by_text("the connection, TLS and sign-in").is_visible()
    assert page.get_by_text("a token for Microsoft Graph").is_visible()
    # Save to Sent Items: MIME sendMail always saves, so no switch is offered, only the fact.
    assert page.get_by_label("Save to Sent Items").count() == 0
    assert "Sent Items" in page.locator("#graph_sent_items").inner_text()
    for width in (390, 768, 1366):  # the facts fit a phone's width too
        page.set_viewport_size({"width": width, "height": 900})
        assert out_of_reach(page) == [], width

    page.get_by_role("button", name="Save").click()
    page.get_by_text("SMTP settings saved.").wait_for()
    history = page.locator("#history").inner_text()
    assert "Send through" in history and "Microsoft Graph (OAuth 2.0)" in history
    for hidden in ("Port", "Use SSL/TLS", "Scopes", "SMTP Server"):
        assert hidden not in history, (hidden, history)
    stored = SmtpSettings.load()
    assert (stored.transport, stored.auth_type, stored.port) == ("graph", "oauth2", 587)

    # Back to SMTP: what was there before Graph is there again, and every type offered.
    page.get_by_label("SMTP (OAuth 2.0 / Basic / none)").check()
    assert page.get_by_label("Port", exact=True).input_value() == "587"
    assert page.locator("#row_scopes").is_visible()
    assert page.evaluate(OFFERED_AUTH_TYPES) == ["oauth2", "basic", "none"]


def test_the_basic_notice_is_shown_once_on_manage_smtp(manage_page: Any) -> None:
    row = SmtpSettings.load()
    row.sender_email, row.smtp_server, row.auth_type = SENDER, "smtp.office365.com", "basic"
    row.username, row.password = SENDER, "pw"
    row.save()
    page = manage_page
    page.reload()
    content = page.locator("#content").inner_text()
    assert content.count("550 5.7.30 Basic authentication is not supported") == 1
    page.get_by_role("link", name="Move to OAuth 2.0 with the setup assistant").click()
    page.wait_for_url("**/administration/smtp/setup/")


@pytest.mark.worker
def test_the_fallback_page_lists_its_own_graph_runs_and_its_saves_are_labelled(
    console: Any, live_server: Any, sandbox: Any, settings: Any
) -> None:
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    page = console
    page.goto(f"{live_server.url}/administration/smtp/fallback/")
    fill_graph(page, sandbox)
    page.get_by_label("Send test email to", exact=False).fill("it@elsewhere.example")
    page.get_by_role("button", name="Validate").click()
    page.locator("#run-verdict.verdict-passed").wait_for(timeout=CHECK_TIMEOUT)
    runs = page.locator("#runs")
    runs.get_by_text("Microsoft Graph").first.wait_for(timeout=CHECK_TIMEOUT)
    assert ":587" not in runs.inner_text()

    page.get_by_role("button", name="Save").click()
    page.get_by_text("Fallback connection saved.").wait_for()
    assert "Microsoft Graph" in page.locator("#runs").inner_text()
    assert "Send through" in page.locator("#history").inner_text()

    # The primary's page: not the fallback's run; its history says whose save it was.
    page.goto(f"{live_server.url}/administration/smtp/")
    assert "No validation has run yet." in page.locator("#runs").inner_text()
    assert "Fallback connection saved" in page.locator("#history").inner_text()

    page.goto(f"{live_server.url}/administration/activity/")
    trail = page.locator("#content").inner_text()
    assert "Fallback connection saved: " in trail and "Saved Manage SMTP" not in trail
    assert CLIENT_SECRET not in page.content()
