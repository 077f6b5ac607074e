"""Credentials in Manage SMTP, against the sandbox's Entra and Exchange: a certificate made
here, uploaded, validated and used to send; PFX import and bad input as field errors;
rotation with a burst of mail across the switch; fallback when the one in use is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.core import mail
from django.test import Client
from django.utils import timezone

from activity.models import Entry, Kind
from alerting.models import Alert
from smtp_settings import outbox, validation
from smtp_settings.credentials.model import Credential
from smtp_settings.mail import certificate
from smtp_settings.models import Delivery, DeliveryState, ValidationRun

from .sandbox.world import CLIENT_SECRET
from .test_certificates import _own_ca, _pem
from .test_sending import delivered, save

pytestmark = pytest.mark.django_db

CREDENTIALS = "/administration/smtp/credentials"


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    settings.SMTP_MAX_MESSAGES_PER_MINUTE = 6000  # the rate limit has tests of its own


def create_certificate(client: Client, months: str = "12") -> Credential:
    answer = client.post(f"{CREDENTIALS}/certificate/", {"months": months})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    return Credential.objects.filter(kind="certificate").order_by("-pk").first()


def validate(client: Client, credential: Credential) -> ValidationRun:
    answer = client.post(f"{CREDENTIALS}/{credential.pk}/validate/")
    assert answer.status_code == 302, answer
    run = ValidationRun.objects.order_by("-created_at").first()
    validation.validation_run_execute(run_id=str(run.id))
    run.refresh_from_db()
    return run


def token_step(run: ValidationRun) -> Any:
    return run.steps.get(key="token")


def test_a_certificate_made_here_validates_once_uploaded_and_then_sends(
    sandbox: Any, admin_client: Client
) -> None:
    save(sandbox.form_values())
    made = create_certificate(admin_client)
    assert made.role == "next" and len(made.thumbprint) == 40
    assert made.thumbprint == made.thumbprint.upper()
    page = admin_client.get("/administration/smtp/").content.decode()
    assert made.thumbprint in page and "PRIVATE KEY" not in page

    before = validate(admin_client, made)
    assert before.status == "failed"
    step = token_step(before)
    assert step.status == "failed" and "700027" in step.server_answer
    assert "Upload" in step.fix and made.thumbprint in step.fix
    assert f"certificate {made.thumbprint}" in " ".join(before.candidate["notes"])

    cer = admin_client.get(f"{CREDENTIALS}/{made.pk}/certificate.cer")
    pem = admin_client.get(f"{CREDENTIALS}/{made.pk}/certificate.pem")
    assert b"PRIVATE" not in cer.content and b"PRIVATE" not in pem.content
    assert sandbox.app.add_certificate(pem.content.decode()) == made.thumbprint

    after = validate(admin_client, made)
    assert token_step(after).status == "passed", token_step(after).detail
    assert after.status in ("passed", "warning")
    # The verdict names what was tested, in a sentence (it read "Note: Tested credential").
    assert f"This run tested this credential: {made.name}" in after.summary
    assert "Note:" not in after.summary

    assert admin_client.post(f"{CREDENTIALS}/{made.pk}/promote/").status_code == 302
    page = admin_client.get("/administration/smtp/").content.decode()
    assert "A certificate (see credentials below) is stored" in page
    sandbox.app.secrets.pop(CLIENT_SECRET)  # the old secret deleted in Entra: only the key works
    mail.send_mail("With a certificate", "Body", "app@x.example", ["it@x.example"])
    assert outbox.outbox_deliver_due()["sent"] == 1
    assert Entry.objects.filter(
        kind=Kind.CREDENTIALS_CHANGED, summary__startswith="Credentials:"
    ).exists()


def test_a_pfx_with_its_password_is_imported_and_a_wrong_one_is_a_field_error(
    sandbox: Any, admin_client: Client
) -> None:
    save(sandbox.form_values())
    key, cert = _own_ca()
    pfx = pkcs12.serialize_key_and_certificates(
        b"mail", key, cert, None, serialization.BestAvailableEncryption(b"pfx pass 7")
    )
    refused = admin_client.post(
        f"{CREDENTIALS}/import/", {"file": _upload("mail.pfx", pfx), "password": "wrong"}
    )
    assert refused.status_code == 400
    assert "password is wrong" in refused.content.decode()
    assert not Credential.objects.filter(kind="certificate").exists()
    taken = admin_client.post(
        f"{CREDENTIALS}/import/", {"file": _upload("mail.pfx", pfx), "password": "pfx pass 7"}
    )
    assert taken.status_code == 302
    assert Credential.objects.get(kind="certificate").role == "next"


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("pem without key", "not its private key"),
        ("key of another certificate", "does not belong to this certificate"),
        ("expired", "expired on"),
        # cryptography makes no key under 1024 bits: the same rule refuses 512.
        ("1024-bit key", "at least 2048 bits"),
        ("5 MB", "a certificate with its key is a few"),
        ("not a certificate", "not a PFX/PKCS#12 or PEM file"),
    ],
)
def test_bad_certificate_files_are_field_errors_and_store_nothing(
    sandbox: Any, admin_client: Client, case: str, said: str
) -> None:
    save(sandbox.form_values())
    key, cert = _own_ca()
    if case == "pem without key":
        material = cert.public_bytes(serialization.Encoding.PEM)
    elif case == "key of another certificate":
        material = _pem(_own_ca()[0], cert)
    elif case == "expired":
        material = _pem(*_own_ca(days=-1))
    elif case == "1024-bit key":
        material = _pem(*_own_ca(bits=1024))
    elif case == "5 MB":
        material = _pem(key, cert) + b"\n" * (5 * 1024 * 1024)
    else:
        material = b"\x00\x01 this is a holiday photo"
    answer = admin_client.post(
        f"{CREDENTIALS}/import/", {"file": _upload("x.pem", material), "password": ""}
    )
    assert answer.status_code == 400
    assert said in answer.content.decode()
    assert not Credential.objects.filter(kind="certificate").exists()


def test_bad_input_elsewhere_in_the_section_is_a_field_error(
    sandbox: Any, admin_client: Client
) -> None:
    save(sandbox.form_values())
    for months in ("0", "37", "twelve"):
        answer = admin_client.post(f"{CREDENTIALS}/certificate/", {"months": months})
        assert answer.status_code == 400
    too_late = (timezone.localdate() + timedelta(days=800)).isoformat()
    answer = admin_client.post(
        f"{CREDENTIALS}/secret/", {"value": "next~Secret.Value", "expires_on": too_late}
    )
    assert answer.status_code == 400 and "at most 24" in answer.content.decode()
    guid = "0b7c5f0e-8d0a-4a8f-9b55-6c2b3f4e5a6d"
    answer = admin_client.post(
        f"{CREDENTIALS}/secret/", {"value": guid, "expires_on": timezone.localdate().isoformat()}
    )
    assert answer.status_code == 400 and "Secret ID" in answer.content.decode()
    assert Credential.objects.count() == 1  # the secret saved with the settings only


def test_rotation_keeps_mail_flowing_across_the_switch(sandbox: Any, admin_client: Client) -> None:
    save(sandbox.form_values())
    made = create_certificate(admin_client)
    sandbox.app.add_certificate(made.certificate_pem)
    assert token_step(validate(admin_client, made)).status == "passed"
    for number in range(10):
        mail.send_mail(f"Before {number}", "Body", "app@x.example", ["it@x.example"])
    outbox.outbox_deliver_due()
    for number in range(10):
        mail.send_mail(f"Across {number}", "Body", "app@x.example", ["it@x.example"])
    assert admin_client.post(f"{CREDENTIALS}/{made.pk}/promote/").status_code == 302
    outbox.outbox_deliver_due()
    old = Credential.objects.get(kind="secret")
    assert old.role == "next"
    removed = admin_client.post(f"{CREDENTIALS}/{old.pk}/remove/", follow=True)
    assert "Delete the client secret" in removed.content.decode()
    sandbox.app.secrets.pop(CLIENT_SECRET)  # and deleted in Entra
    for number in range(10):
        mail.send_mail(f"After {number}", "Body", "app@x.example", ["it@x.example"])
    outbox.outbox_deliver_due()
    assert len(delivered(sandbox)) == 30
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
    assert list(Credential.objects.values_list("kind", "role")) == [("certificate", "in_use")]


def test_when_entra_refuses_the_one_in_use_mail_goes_with_the_other_and_is_said_once(
    sandbox: Any, admin_client: Client
) -> None:
    save(sandbox.form_values())
    made = create_certificate(admin_client)
    sandbox.app.add_certificate(made.certificate_pem)
    sandbox.app.secrets.pop(CLIENT_SECRET)  # the secret in use removed in Entra
    for number in range(3):
        mail.send_mail(f"Fallback {number}", "Body", "app@x.example", ["it@x.example"])
        assert outbox.outbox_deliver_due()["sent"] == 1
    assert len(delivered(sandbox)) == 3
    alerts = Alert.objects.filter(kind="credential.fallback")
    assert alerts.count() == 1 and "7000215" in alerts.get().body
    said = Entry.objects.filter(summary__contains="switched to the other one")
    assert said.count() == 1 and said.get().kind == Kind.CREDENTIAL_FALLBACK
    assert said.get().summary.count("AADSTS7000215") == 1  # Entra's text is not named twice
    page = admin_client.get("/administration/smtp/").content.decode()
    assert 'id="credential-refused"' in page and made.thumbprint in page
    administration = admin_client.get("/administration/").content.decode()
    assert 'id="banner-credential-fallback"' in administration


def _upload(name: str, content: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def test_made_certificates_hold_a_2048_bit_key(db: Any) -> None:
    assert certificate.make(common_name="x").certificate.key_bits >= 2048


def test_each_credential_has_its_reminders_and_a_ready_next_one_changes_what_they_say(
    sandbox: Any, admin_client: Client
) -> None:
    from datetime import UTC, datetime, time

    from smtp_settings.models import SmtpSettings
    from smtp_settings.monitoring import reminders

    save(sandbox.form_values())
    secret_expires = SmtpSettings.load().secret_expiration_date
    made = create_certificate(admin_client, months="1")
    sandbox.app.add_certificate(made.certificate_pem)
    assert token_step(validate(admin_client, made)).status == "passed"

    def on(day: Any) -> datetime:
        return datetime.combine(day, time(9), tzinfo=UTC)

    report = reminders.secret_expiry_reminders_send(now=on(secret_expires - timedelta(days=7)))
    assert report.threshold == "7d"
    assert report.subject.endswith("the next credential is ready, make it the one in use")
    titles = list(Alert.objects.filter(kind="secret.expiry").values_list("title", flat=True))
    # The next certificate (one month) has expired by then: its own series says so.
    assert any(title.startswith("The SMTP certificate expired") for title in titles)

    admin_client.post(f"{CREDENTIALS}/{made.pk}/promote/")
    made.refresh_from_db()
    report = reminders.secret_expiry_reminders_send(now=on(made.expires_on - timedelta(days=3)))
    assert report.subject == "The SMTP certificate expires in 3 days"
    page = admin_client.get("/administration/smtp/").content.decode()
    assert f"{made.expires_on:%Y-%m-%d}" in page and "Certificate</dt>" in page
