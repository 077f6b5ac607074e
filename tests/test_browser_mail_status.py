"""An administrator in a real browser sees the state of mail: the status block, the banners,
and the outbox with its held messages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone

from smtp_settings import outbox
from smtp_settings.mail import oauth

from .browser import sign_in
from .sandbox.world import CLIENT_SECRET, SENDER
from .test_sending import save

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_status_block_banners_and_held_mail_in_the_browser(
    live_server: Any, page: Any, sandbox: Any, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    soon = timezone.localdate() + timedelta(days=3)
    save({**sandbox.form_values(), "secret_expiration_date": soon.isoformat()})
    sandbox.app.secrets[CLIENT_SECRET] = True  # Entra already refuses it
    oauth.forget_applications()
    mail.send_mail("Waiting", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()

    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.get_by_role("link", name="Administration", exact=True).first.click()
    page.wait_for_url(f"{live_server.url}/administration/")
    status = page.locator("#mail-status")
    assert "Expires in 3 days" in status.inner_text()
    # The message, and the hold's own alert to the administrator, held with it.
    assert "0 queued, 0 deferred, 2 held" in status.inner_text()
    expiring = page.locator("#banner-secret-expiring")
    assert expiring.is_visible() and "expires in 3 days" in expiring.inner_text()
    held = page.locator("#banner-mail-held")
    assert held.is_visible() and "2 messages held" in held.inner_text()

    held.get_by_role("link", name="Outbox").click()
    page.wait_for_url(f"{live_server.url}/administration/smtp/outbox/")
    row = page.locator("#outbox-table tbody tr").first
    assert row.get_attribute("data-state") == "held"
    assert "Held" in row.inner_text() and "expired" in row.inner_text()
    assert CLIENT_SECRET not in page.content()
