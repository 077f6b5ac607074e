"""No credential material in clear anywhere: a certificate made and one imported, a next
secret added, validated on a real worker, promoted, used to send; then the database (every
table), the logs, the broker, the pages and the JSON are searched for the private keys, the
PFX password and the secrets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from smtp_settings.credentials.model import Credential
from smtp_settings.models import Delivery, DeliveryState, ValidationRun

from .sandbox.world import CLIENT_SECRET, SENDER
from .test_certificates import _own_ca
from .test_outbox_worker import wait_for, worker_process  # noqa: F401  (a fixture)
from .test_sending import save
from .test_validate_worker import broker_contents

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CREDENTIALS = "/administration/smtp/credentials"
NEXT_SECRET = "Nx8~Next.Secret_Value-2q9w8e7r6t5y4u3i2o1p"
PFX_PASSWORD = "pfx-pass-9c1d7e"


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


def every_table() -> str:
    with connection.cursor() as cursor:
        rows = []
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            rows.append(repr(cursor.fetchall()))
    return "\n".join(rows)


def key_lines(pem: str) -> list[str]:
    """The body lines of a private key's PEM: any of them in clear is a leak."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def test_no_private_key_or_secret_in_the_database_logs_broker_pages_or_json(
    sandbox: Any,
    worker_process: Any,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    user = User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    admin = Client()
    admin.force_login(user)
    save(sandbox.form_values())
    worker_process("leaks")

    admin.post(f"{CREDENTIALS}/certificate/", {"months": "12"})
    made = Credential.objects.get(kind="certificate")
    sandbox.app.add_certificate(made.certificate_pem)
    admin.post(f"{CREDENTIALS}/{made.pk}/validate/")
    run = ValidationRun.objects.order_by("-created_at").first()
    wait_for(lambda: ValidationRun.objects.get(pk=run.pk).is_finished)
    json_answers = [admin.get(reverse("smtp_settings:run_status", args=[run.id])).content]
    assert ValidationRun.objects.get(pk=run.pk).steps.get(key="token").status == "passed"
    admin.post(f"{CREDENTIALS}/{made.pk}/promote/")
    old = Credential.objects.get(kind="secret")
    admin.post(f"{CREDENTIALS}/{old.pk}/remove/")

    key, cert = _own_ca()
    pfx = pkcs12.serialize_key_and_certificates(
        b"mail", key, cert, None, serialization.BestAvailableEncryption(PFX_PASSWORD.encode())
    )
    upload = SimpleUploadedFile("org.pfx", pfx, content_type="application/x-pkcs12")
    assert (
        admin.post(f"{CREDENTIALS}/import/", {"file": upload, "password": PFX_PASSWORD}).status_code
        == 302
    )
    imported = Credential.objects.get(kind="certificate", role="next")
    admin.post(f"{CREDENTIALS}/{imported.pk}/remove/")
    admin.post(f"{CREDENTIALS}/secret/", {"value": NEXT_SECRET, "expires_on": "2027-06-30"})

    queued = broker_contents()
    for n in range(3):
        mail.send_mail(f"Leak check {n}", "Body", SENDER, ["it@x.example"])
    wait_for(lambda: Delivery.objects.filter(state=DeliveryState.SENT).count() == 3)

    made_key = Credential.objects.get(pk=made.pk).material
    imported_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    pages = [
        admin.get(url).content.decode(errors="replace")
        for url in (
            "/administration/smtp/",
            "/administration/smtp/setup/",
            "/administration/activity/",
            reverse("smtp_settings:outbox"),
            reverse("smtp_settings:run_detail", args=[run.id]),
            f"{CREDENTIALS}/{made.pk}/certificate.pem",
        )
    ]
    places = {
        "database": every_table(),
        "logs": caplog.text + (tmp_path / "leaks.log").read_text(errors="replace"),
        "broker": (queued + broker_contents()).decode(errors="replace"),
        "pages": "\n".join(pages),
        "json": b"\n".join(json_answers).decode(),
    }
    secrets = [CLIENT_SECRET, NEXT_SECRET, PFX_PASSWORD, *key_lines(made_key)]
    secrets += key_lines(imported_key)
    for place, text in places.items():
        assert "PRIVATE KEY" not in text, f"a private key is in the {place}"
        for secret in secrets:
            assert secret not in text, f"credential material is in the {place}"
