"""A quiet log (issue 22): an idle console's routine writes no INFO line, a probe's 503 and a
form sent back with errors are answers, not faults, and the sandbox says nothing per AUTH."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_a_probe_503_and_a_form_with_errors_log_no_error_or_warning(
    caplog: Any, admin_client: Any
) -> None:
    caplog.set_level(logging.INFO, logger="root")
    assert admin_client.get("/healthz").status_code == 503
    response = admin_client.post("/administration/smtp/", {"action": "validate"})
    assert response.status_code == 400
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == [], [r.getMessage() for r in noisy]


def test_the_sandbox_help_names_its_port_variables() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "tests.sandbox", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "SANDBOX_ENTRA_PORT" in shown and "SANDBOX_SMTP_PORT" in shown
    made = subprocess.run(
        ["make", "-n", "sandbox", "SANDBOX_ENTRA_PORT=9443", "SANDBOX_SMTP_PORT=9587"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--entra-port 9443 --smtp-port 9587" in made


@pytest.mark.django_db
def test_the_sandbox_logs_nothing_per_auth(sandbox: Any, caplog: Any, settings: Any) -> None:
    from django.core import mail

    from smtp_settings import outbox

    from .test_sending import save

    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    caplog.set_level(logging.INFO, logger="root")
    save(sandbox.form_values())
    mail.send_mail("Hello", "Body", sandbox.form_values()["sender_email"], ["a@elsewhere.example"])
    outbox.outbox_deliver_due()
    assert sandbox.exchange.handler.authenticated_sessions >= 1
    assert not [r for r in caplog.records if "login_data" in r.getMessage()]
