"""Links in mail and the consent redirect are the console's own address (SEI_CONSOLE_URL),
whatever Host header the request came with: a reset asked for with ``Host: evil.example``
must not mail its one-time link to evil.example."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from .sandbox.world import CLIENT_ID, TENANT_ID

pytestmark = pytest.mark.django_db

CONSOLE = "https://console.example.test"
EVIL = {"HTTP_HOST": "evil.example"}


@pytest.fixture(autouse=True)
def _permissive_hosts(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    settings.SEI_CONSOLE_URL = CONSOLE
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def links(body: str) -> list[str]:
    return re.findall(r"https?://\S+", body)


def test_a_reset_requested_with_another_host_mails_the_consoles_address(
    admin_user: User,
) -> None:
    response = Client().post(reverse("password_reset"), {"email": admin_user.email}, **EVIL)
    assert response.status_code == 302
    (message,) = mail.outbox
    found = links(message.body)
    assert found and all(link.startswith(CONSOLE + "/login/reset/") for link in found), found
    assert "evil.example" not in message.body + message.subject


def test_an_invitation_sent_through_another_host_carries_the_consoles_address(
    admin_user: User,
) -> None:
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        reverse("accounts:user_add"),
        {"username": "invitee", "email": "invitee@example.test", "administrator": ""},
        **EVIL,
    )
    assert response.status_code == 302
    invitee = User.objects.get(username="invitee")
    client.post(reverse("accounts:user_action", args=[invitee.pk]), {"action": "invite"}, **EVIL)
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        found = links(message.body)
        assert found and all(link.startswith(CONSOLE + "/login/reset/") for link in found)
        assert "evil.example" not in message.body


def test_the_consent_redirect_is_the_consoles_address(sandbox: Any, admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    url = reverse("smtp_settings:setup")
    client.post(
        url,
        {
            "part": "app",
            "action": "save",
            "cloud": f"host:{sandbox.authority_host}",
            "tenant": TENANT_ID,
            "client_id": CLIENT_ID,
        },
        **EVIL,
    )
    page = client.get(url, **EVIL).content.decode()
    consent = re.search(r'href="(https://[^"]*/adminconsent\?[^"]*)"', page)
    assert consent is not None
    query = parse_qs(urlsplit(html.unescape(consent.group(1))).query)
    assert query["redirect_uri"] == [CONSOLE + url]
    assert "evil.example" not in page
