"""The diagnosis rows of certificate credentials, each provoked against the sandbox's Entra:
a key it does not know, a signature that does not verify, an expired certificate, a clock too
far off, and assertions for another client or audience."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from smtp_settings import diagnosis, validation
from smtp_settings.credentials.model import Credential, binding_of
from smtp_settings.mail import certificate
from smtp_settings.models import SmtpSettings, ValidationRun

from .sandbox.world import CLIENT_ID, TENANT_ID
from .test_certificates import SCOPES, _assertion
from .test_sending import save

pytestmark = pytest.mark.django_db


def stored_next(
    pair: certificate.KeyPair, *, key_of: certificate.KeyPair | None = None
) -> Credential:
    """A certificate stored as the next credential as the section stores it (``key_of``: a
    damaged row whose key is another certificate's)."""
    return Credential.objects.create(
        auth_type="oauth2",
        kind="certificate",
        role="next",
        material=(key_of or pair).private_key_pem,
        certificate_pem=pair.certificate.pem,
        thumbprint=pair.certificate.thumbprint,
        expires_on=pair.certificate.not_after.date(),
        bound_to=binding_of(SmtpSettings.load(), "oauth2"),
    )


def token_finding(client: Client, credential: Credential) -> Any:
    client.post(f"/administration/smtp/credentials/{credential.pk}/validate/")
    run = ValidationRun.objects.order_by("-created_at").first()
    validation.validation_run_execute(run_id=str(run.id))
    return run.steps.get(key="token")


def test_a_certificate_entra_does_not_know_is_named_with_the_upload_fix(
    sandbox: Any, admin_client: Client
) -> None:
    save(sandbox.form_values())
    pair = certificate.make(common_name="x")
    step = token_finding(admin_client, stored_next(pair))
    assert step.diagnosis == "aadsts_certificate_not_uploaded"
    assert pair.certificate.thumbprint in step.fix and CLIENT_ID in step.fix


def test_a_key_that_is_not_the_certificates_is_a_signature_failure(
    sandbox: Any, admin_client: Client
) -> None:
    save(sandbox.form_values())
    pair, other = certificate.make(common_name="x"), certificate.make(common_name="y")
    sandbox.app.add_certificate(pair.certificate.pem)
    step = token_finding(admin_client, stored_next(pair, key_of=other))
    assert step.diagnosis == "aadsts_certificate_signature", step.server_answer


def test_an_expired_certificate_is_named(sandbox: Any, admin_client: Client) -> None:
    save(sandbox.form_values())
    pair = certificate.make(common_name="x", months=1, now=datetime.now(UTC) - timedelta(days=62))
    sandbox.app.add_certificate(pair.certificate.pem)
    step = token_finding(admin_client, stored_next(pair))
    assert step.diagnosis == "aadsts_certificate_expired", step.server_answer


def test_a_clock_far_off_is_named(
    sandbox: Any, admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import msal.oauth2cli.assertion as msal_assertion

    save(sandbox.form_values())
    pair = certificate.make(common_name="x")
    sandbox.app.add_certificate(pair.certificate.pem)

    class _Behind:
        """This server's clock, an hour behind Entra's (only where MSAL signs)."""

        @staticmethod
        def time() -> float:
            return time.time() - 3600

    monkeypatch.setattr(msal_assertion, "time", _Behind)
    step = token_finding(admin_client, stored_next(pair))
    assert step.diagnosis == "aadsts_assertion_clock", step.detail


def test_another_700027_answer_still_names_the_certificate(db: Any) -> None:
    """Entra's 700027 texts vary; one matching none of the reasons above still gets a row."""
    finding = diagnosis.diagnose(
        "token", codes=[700027], answer="AADSTS700027: Client assertion failed."
    )
    assert finding is not None and finding.key == "aadsts_certificate_refused"


@pytest.mark.parametrize(
    ("change", "row"),
    [
        ({"iss": "someone-else", "sub": "someone-else"}, "aadsts_assertion_wrong_client"),
        (
            {"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"},
            "aadsts_assertion_audience",
        ),
    ],
)
def test_assertions_for_another_client_or_audience_are_named(
    sandbox: Any, change: dict[str, str], row: str
) -> None:
    """MSAL never signs these (it names this client and endpoint): what Entra answers to one
    is sent as it would be, and the answer diagnosed."""
    import requests

    pair = certificate.make(common_name="x")
    sandbox.app.add_certificate(pair.certificate.pem)
    endpoint = sandbox.entra.token_endpoint(TENANT_ID)
    answer = requests.post(
        endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "scope": SCOPES[0],
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": _assertion(pair, **{"aud": endpoint, **change}),
        },
        verify=str(sandbox.ca_bundle),
        timeout=5,
    ).json()
    finding = diagnosis.diagnose(
        "token", codes=answer["error_codes"], answer=answer["error_description"]
    )
    assert finding is not None and finding.key == row
