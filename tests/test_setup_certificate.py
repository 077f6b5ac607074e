"""The setup assistant's step 4, the recommended way: a certificate made for the app, its .cer
uploaded, the check run with it, and Manage SMTP's Save keeping it as the credential in use."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from smtp_settings import outbox, validation
from smtp_settings.credentials.model import Credential
from smtp_settings.models import SetupSecret, SmtpSettings, ValidationRun

from .sandbox.world import CLIENT_SECRET, SENDER
from .test_setup_assistant import _app_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def page_client(sandbox: Any, admin_user: Any, settings: Any) -> Client:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    client = Client()
    client.force_login(admin_user)
    return client


def test_step_four_makes_a_certificate_checks_it_and_manage_smtp_keeps_it(
    page_client: Client, sandbox: Any
) -> None:
    setup = "/administration/smtp/setup/"
    page_client.post(setup, _app_post(sandbox))
    page = page_client.get(setup).content.decode()
    assert "Create a certificate (recommended)" in page and "Or use a client secret" in page

    assert page_client.post(setup, {"part": "certificate"}).status_code == 302
    page = page_client.get(setup).content.decode()
    held = SetupSecret.objects.get()
    assert held.certificate_pem and "PRIVATE KEY" not in page
    cer = page_client.get(f"{setup}certificate.cer")
    assert cer["Content-Type"] == "application/pkix-cert" and b"PRIVATE" not in cer.content

    page_client.post(setup, {"part": "consent", "action": "check"})
    run = ValidationRun.objects.order_by("-created_at").first()
    validation.validation_run_execute(run_id=str(run.id))
    assert run.steps.get(key="token").diagnosis == "aadsts_certificate_not_uploaded"

    thumbprint = sandbox.app.add_certificate(held.certificate_pem)
    assert thumbprint in page
    page_client.post(setup, {"part": "consent", "action": "check"})
    run = ValidationRun.objects.order_by("-created_at").first()
    validation.validation_run_execute(run_id=str(run.id))
    assert run.steps.get(key="token").status == "passed"

    page_client.post(
        setup,
        {
            "part": "mailbox",
            "action": "save",
            "sender_email": SENDER,
            "use_sender_email": "on",
            "smtp_server": "127.0.0.1",
            "port": str(sandbox.exchange.port),
        },
    )
    values = {
        **sandbox.form_values(),
        "client_secret": "",
        "secret_expiration_date": "",
        "use_setup_secret": "1",
    }
    saved = page_client.post("/administration/smtp/", values)
    assert saved.status_code == 302, saved.content.decode()[-3000:]
    (credential,) = Credential.objects.all()
    assert credential.kind == "certificate" and credential.role == "in_use"
    assert credential.thumbprint == thumbprint
    assert SmtpSettings.load().client_secret is None  # the key is never a client secret
    assert not SetupSecret.objects.exists()

    sandbox.app.secrets.pop(CLIENT_SECRET)  # only the certificate can sign in now
    mail.send_mail("Set up with a certificate", "Body", "app@x.example", ["it@x.example"])
    assert outbox.outbox_deliver_due()["sent"] == 1
