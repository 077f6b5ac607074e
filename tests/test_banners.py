"""Banners ranked by severity, one per cause: a secret Entra refuses is said once, however
many parts of the console (the secret's date, the health check, the held outbox) saw it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from smtp_settings import outbox
from smtp_settings.mail import oauth
from smtp_settings.models import SmtpSettings
from smtp_settings.monitoring import health_check

from .sandbox.world import CLIENT_SECRET, SENDER
from .test_sending import save

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


def banners_of(page: str) -> list[tuple[str, str, str]]:
    """(severity, id, text) of each banner, in page order."""
    found = re.findall(
        r'<p class="message (\w+) banner" role="\w+" id="banner-([\w-]+)">(.*?)</p>', page, re.S
    )
    return [(severity, key, re.sub(r"<[^>]+>", "", text)) for severity, key, text in found]


def expired_secret_everywhere(sandbox: Any) -> None:
    """Entra refuses the secret (AADSTS7000222), its date has passed, the daily health check
    failed on it and a message waits: four views of one cause."""
    save(sandbox.form_values())
    yesterday = timezone.localdate() - timedelta(days=1)
    SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).update(
        secret_expiration_date=yesterday
    )
    sandbox.app.secrets[CLIENT_SECRET] = True
    oauth.forget_applications()
    assert health_check.mail_health_check_run() is not None
    mail.send_mail("Waiting", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()


def test_one_cause_gives_one_banner_and_its_aadsts_text_once(
    sandbox: Any, admin_client: Client
) -> None:
    expired_secret_everywhere(sandbox)
    page = admin_client.get(reverse("administration")).content.decode()
    shown = banners_of(page)
    assert [(severity, key) for severity, key, _ in shown] == [("error", "secret-expired")]
    text = shown[0][2]
    assert text.count("AADSTS7000222") == 1
    # The health check's alert to the administrators waits too, and so does the hold's own.
    assert "3 messages wait in the Outbox until working settings are saved" in text


def test_errors_come_before_warnings_and_a_banner_does_not_link_to_its_own_page(
    sandbox: Any, admin_client: Client
) -> None:
    soon = timezone.localdate() + timedelta(days=3)
    save({**sandbox.form_values(), "secret_expiration_date": soon.isoformat()})
    sandbox.app.secrets[CLIENT_SECRET] = True
    oauth.forget_applications()
    mail.send_mail("Waiting", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()

    index = admin_client.get(reverse("administration")).content.decode()
    assert [(severity, key) for severity, key, _ in banners_of(index)] == [
        ("error", "mail-held"),
        ("warning", "secret-expiring"),
    ]
    manage_url, outbox_url = reverse("smtp_settings:manage"), reverse("smtp_settings:outbox")
    assert f'href="{manage_url}">Manage SMTP</a></p>' in index
    assert f'href="{outbox_url}">Outbox</a></p>' in index

    manage = admin_client.get(manage_url).content.decode()
    expiring = re.search(r'id="banner-secret-expiring">.*?</p>', manage, re.S)
    assert expiring and "<a " not in expiring.group(0)
    held = re.search(r'id="banner-mail-held">.*?</p>', manage, re.S)
    assert held and f'href="{outbox_url}"' in held.group(0)
    box = admin_client.get(outbox_url).content.decode()
    held = re.search(r'id="banner-mail-held">.*?</p>', box, re.S)
    assert held and "<a " not in held.group(0)


def test_a_secret_expiring_within_the_month_is_an_informational_banner(
    sandbox: Any, admin_client: Client
) -> None:
    later = timezone.localdate() + timedelta(days=20)
    save({**sandbox.form_values(), "secret_expiration_date": later.isoformat()})
    page = admin_client.get(reverse("administration")).content.decode()
    assert [(severity, key) for severity, key, _ in banners_of(page)] == [
        ("info", "secret-expiring")
    ]
    assert 'role="status" id="banner-secret-expiring"' in page
