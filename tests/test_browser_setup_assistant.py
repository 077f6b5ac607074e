"""Set up Microsoft 365 in a real browser, end to end on the sandbox: each step checked,
the script downloaded, Use these settings, Validate passing on Manage SMTP, then Save."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth.models import User

from sei_admin.celery import app
from smtp_settings.models import SetupSecret, SmtpSettings

from .browser import out_of_reach, sign_in
from .sandbox.world import (
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET_EXPIRES,
    SENDER,
    TENANT_DOMAIN,
    TENANT_ID,
)

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHECK_TIMEOUT = 30_000


@pytest.fixture
def console(live_server: Any, sandbox: Any, page: Any) -> Iterator[Any]:
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        sign_in(page, live_server.url, "ops", "a long passphrase 7")
        page.goto(f"{live_server.url}/administration/smtp/")
        yield page


def passed(page: Any, step: int) -> Any:
    verdict = page.locator(f"#step-{step} .check-verdict.verdict-passed")
    verdict.wait_for(timeout=CHECK_TIMEOUT)
    return verdict


def test_the_assistant_end_to_end_on_the_sandbox(console: Any, sandbox: Any, tmp_path: Any) -> None:
    page = console
    page.get_by_role("link", name="Set up Microsoft 365").first.click()
    page.wait_for_url("**/administration/smtp/setup/")

    # 1. The tenant, by its domain: the check finds its ID and fills the token endpoint.
    page.get_by_label("Microsoft cloud", exact=True).select_option(f"host:{sandbox.authority_host}")
    page.get_by_label("Directory (tenant) ID", exact=True).fill(TENANT_DOMAIN)
    page.get_by_label("Application (client) ID", exact=True).fill(CLIENT_ID)
    page.get_by_role("button", name="Save and check the tenant").click()
    passed(page, 1)
    assert TENANT_ID in page.locator("#tenant-facts").inner_text()
    facts = page.locator("#step-1 .check").inner_text()
    assert TENANT_ID in facts and sandbox.entra.token_endpoint(TENANT_ID) in facts
    # Shown once: the check's facts, not again beside it.
    assert page.locator("#step-1").inner_text().count(sandbox.entra.token_endpoint(TENANT_ID)) == 1
    assert (
        page.locator("#consent-url")
        .get_attribute("href")
        .startswith(
            f"https://{sandbox.authority_host}/{TENANT_ID}/v2.0/adminconsent?client_id={CLIENT_ID}"
        )
    )

    # 4. The secret: held for the session, never shown; steps 2-3 and 4 checked by one token.
    page.get_by_label("Client secret Value", exact=True).fill(CLIENT_SECRET)
    page.get_by_label("Secret Expiration Date", exact=True).fill(SECRET_EXPIRES)
    page.get_by_role("button", name="Save and check the secret").click()
    passed(page, 4)
    passed(page, 3)
    assert page.locator("#secret-held").is_visible()
    assert CLIENT_SECRET not in page.content()

    # 5. The mailbox: the script is filled in with the service principal from the token.
    page.get_by_label("Sender Email", exact=True).fill(SENDER)
    page.get_by_label("SMTP Server", exact=True).fill("127.0.0.1")
    page.get_by_label("Port", exact=True).fill(str(sandbox.exchange.port))
    page.get_by_role("button", name="Save and check mailbox access").click()
    passed(page, 5)
    assert "Authenticate" in page.locator("#step-5 .check").inner_text()
    # The token's steps are shown once (steps 3 and 4), not again under step 5.
    assert page.locator(".check li[data-key='token']").count() == 1
    assert page.locator(".check li[data-key='token_contents']").count() == 1
    # Finished steps fold to their title and result; all five passed, the page is short.
    page.set_viewport_size({"width": 1366, "height": 900})
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 2500, height
    assert page.locator("#step-1 .check").is_hidden()
    page.locator("#step-1 > details > summary").click()
    assert page.locator("#step-1 .check-verdict.verdict-passed").is_visible()
    for width in (390, 768, 1366):
        page.set_viewport_size({"width": width, "height": 900})
        assert out_of_reach(page) == [], width
    assert page.locator("#step-5 button.copy").is_visible(), "copy buttons come with JavaScript"
    with page.expect_download() as download_info:
        page.locator("#download-script").click()
    download = download_info.value
    assert download.suggested_filename == "sei-exchange-smtp-setup.ps1"
    download.save_as(tmp_path / "setup.ps1")
    script = (tmp_path / "setup.ps1").read_text()
    assert f"$TenantId = '{TENANT_ID}'" in script
    assert f"$AppId = '{CLIENT_ID}'" in script
    assert f"$EnterpriseAppObjectId = '{sandbox.app.service_principal_id}'" in script
    assert f"    '{SENDER}'" in script
    if os.environ.get("SEI_SCREENSHOTS_DIR"):
        page.screenshot(
            path=str(Path(os.environ["SEI_SCREENSHOTS_DIR"]) / "setup-assistant.png"),
            full_page=True,
        )

    # Use these settings: Manage SMTP filled in, Validate passing, nothing saved yet.
    page.get_by_role("button", name="Use these settings").click()
    page.wait_for_url("**/administration/smtp/?from=setup*")
    page.locator("#run-verdict.verdict-passed").wait_for(timeout=CHECK_TIMEOUT)
    assert page.get_by_label("Token Endpoint", exact=True).input_value() == (
        sandbox.entra.token_endpoint(TENANT_ID)
    )
    assert page.get_by_label("SMTP Server", exact=True).input_value() == "127.0.0.1"
    assert page.get_by_label("Client Secret", exact=True).input_value() == ""
    assert CLIENT_SECRET not in page.content()
    assert not SmtpSettings.objects.exists()
    if os.environ.get("SEI_SCREENSHOTS_DIR"):
        page.screenshot(
            path=str(Path(os.environ["SEI_SCREENSHOTS_DIR"]) / "setup-use-settings.png"),
            full_page=True,
        )

    page.get_by_role("button", name="Save").click()
    page.get_by_text("SMTP settings saved.").wait_for()
    stored = SmtpSettings.load()
    assert stored.client_secret == CLIENT_SECRET
    assert str(stored.secret_expiration_date) == SECRET_EXPIRES
    assert not SetupSecret.objects.exists()


def test_without_javascript_the_steps_post_and_a_check_shows_when_it_ends(
    live_server: Any, sandbox: Any, chromium: Any
) -> None:
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    context = chromium.new_context(java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            sign_in(page, live_server.url, "ops", "a long passphrase 7")
            page.goto(f"{live_server.url}/administration/smtp/setup/")
            page.get_by_label("Microsoft cloud", exact=True).select_option(
                f"host:{sandbox.authority_host}"
            )
            page.get_by_label("Directory (tenant) ID", exact=True).fill("no-such.example")
            page.get_by_label("Application (client) ID", exact=True).fill(CLIENT_ID)
            page.get_by_role("button", name="Save and check the tenant").click()
            # No script polls: the page refreshes itself while the check runs.
            verdict = page.locator("#step-1 .check-verdict.verdict-failed")
            verdict.wait_for(timeout=CHECK_TIMEOUT)
            step = page.locator("#step-1 .check").inner_text()
            assert "Failed at step 1: Register the app" in step
            assert "AADSTS90002" in step and "Likely cause:" in step
            assert page.locator("button.copy").first.is_hidden(), "no copy button without JS"
    finally:
        context.close()
