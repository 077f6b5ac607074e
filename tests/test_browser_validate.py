"""Validate in a real browser: steps appear while the run is in progress, then the verdict."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth.models import User

from sei_admin.celery import app
from smtp_settings.models import SmtpSettings

from .browser import sign_in
from .sandbox.world import CLIENT_SECRET

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

LABELS = {
    "smtp_server": "SMTP Server",
    "sender_email": "Sender Email",
    "port": "Port",
    "client_id": "Client ID",
    "client_secret": "Client Secret",
    "secret_expiration_date": "Secret Expiration Date",
    "token_endpoint": "Token Endpoint",
    "scopes": "Scopes",
}


@pytest.fixture
def console(live_server: Any, sandbox: Any, page: Any) -> Iterator[Any]:
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        sign_in(page, live_server.url, "ops", "a long passphrase 7")
        page.goto(f"{live_server.url}/administration/smtp/")
        yield page


def fill(page: Any, values: dict[str, str]) -> None:
    for name, label in LABELS.items():
        page.get_by_label(label, exact=True).fill(values[name])


def test_validate_shows_progress_then_the_verdict(console: Any, sandbox: Any) -> None:
    page = console
    sandbox.entra.delay_seconds = 1.5  # long enough to watch the token step run
    fill(page, sandbox.form_values())
    page.get_by_label("Send test email to", exact=True).fill("it@elsewhere.example")
    page.get_by_role("button", name="Validate").click()

    # In progress: the steps are listed before the verdict exists.
    page.locator("#run-steps li[data-key='token'].step-running").wait_for()
    assert page.locator("#run-steps li").count() == 7
    assert page.locator("#run-verdict").inner_text().startswith("Running")

    page.locator("#run-verdict.verdict-passed").wait_for(timeout=30_000)
    assert page.locator("#run-verdict").inner_text() == "Passed"
    assert "it@elsewhere.example" in page.locator("#run-summary").inner_text()
    assert page.locator("#run-steps li.step-passed").count() == 7
    assert "235 2.7.0" in page.locator("li[data-key='authenticate']").inner_text()
    assert CLIENT_SECRET not in page.content()
    assert not SmtpSettings.objects.exists(), "Validate must not save"
    assert len(sandbox.exchange.delivered) == 1
    # The recent-validations list follows without a reload.
    page.locator("#runs table .verdict-passed").wait_for(timeout=10_000)
    assert "No validation has run yet" not in page.locator("#runs").inner_text()


def test_wrong_secret_shows_the_cause_and_the_fix(console: Any, sandbox: Any) -> None:
    page = console
    fill(page, {**sandbox.form_values(), "client_secret": "8Q~the-secret-id-not-its-value"})
    page.get_by_role("button", name="Validate").click()

    page.locator("#run-verdict.verdict-failed").wait_for(timeout=30_000)
    token = page.locator("li[data-key='token']")
    text = token.inner_text()
    assert "AADSTS7000215" in text
    assert "Likely cause:" in text and "secret's ID was pasted" in text
    assert "Fix:" in text and "Certificates & secrets" in text
    assert "Correlation ID" in text
    assert page.locator("li[data-key='connect']").inner_text().count("Skipped") >= 1


def test_field_errors_appear_beside_the_fields_and_no_run_starts(console: Any) -> None:
    page = console
    page.get_by_label("SMTP Server", exact=True).fill("smtp.office365.com:587")
    page.get_by_role("button", name="Validate").click()
    error = page.locator("#row_smtp_server .error")
    error.wait_for()
    assert "Port field" in error.inner_text()
    assert page.locator("#validation").is_hidden()
