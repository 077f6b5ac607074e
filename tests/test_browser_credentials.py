"""Credentials in a real browser: create a certificate, download its .cer and .pem, make it
the one in use, remove the old secret; every page without the private key."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from smtp_settings.credentials.model import Credential

from .browser import sign_in
from .test_sending import save

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_download_promote_and_remove_credentials(
    live_server: Any, page: Any, sandbox: Any
) -> None:
    User.objects.create_superuser("ops", "ops@contoso.example", "a long passphrase 7")
    save(sandbox.form_values())
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.goto(f"{live_server.url}/administration/smtp/#credentials")
    section = page.locator("#credentials")
    assert section.locator("tr[data-role='in_use']").count() == 1  # the saved secret

    section.get_by_label("Valid for (months)").fill("6")
    section.get_by_role("button", name="Create a certificate").click()
    page.get_by_text("Certificate created (next)").wait_for()
    made = Credential.objects.get(kind="certificate")
    row = page.locator(f"#credential-{made.pk}")
    assert row.locator(".thumbprint").inner_text() == made.thumbprint
    assert "PRIVATE KEY" not in page.content()

    with page.expect_download() as cer:
        row.get_by_role("link", name="Download .cer").click()
    assert cer.value.suggested_filename.endswith(".cer")
    with page.expect_download() as pem:
        row.get_by_role("link", name="Download .pem").click()
    pem_text = open(pem.value.path(), encoding="ascii").read()  # noqa: SIM115
    assert "BEGIN CERTIFICATE" in pem_text and "PRIVATE" not in pem_text
    assert sandbox.app.add_certificate(pem_text) == made.thumbprint  # uploaded in "Entra"

    row.get_by_role("button", name="Make it the one in use").click()
    page.get_by_text("is now the credential in use").wait_for()
    assert page.locator(f"#credential-{made.pk}").get_attribute("data-role") == "in_use"
    old = Credential.objects.get(kind="secret")
    page.locator(f"#credential-{old.pk}").get_by_role("button", name="Remove").click()
    page.get_by_text("Delete the client secret").wait_for()
    assert page.locator(f"#credential-{old.pk}").count() == 0
    assert list(Credential.objects.values_list("kind", "role")) == [("certificate", "in_use")]
    assert "PRIVATE KEY" not in page.content()
