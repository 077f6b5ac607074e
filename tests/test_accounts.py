"""Password change for the signed-in administrator, and password reset by e-mail through
the outbox to the sandbox's Exchange stand-in."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from post_office.models import Email

from smtp_settings.outbox import service as outbox

from .test_sending import save

pytestmark = pytest.mark.django_db


def test_changing_the_password_keeps_this_session_and_ends_the_others(admin_user: User) -> None:
    here, elsewhere = Client(), Client()
    here.force_login(admin_user)
    elsewhere.force_login(admin_user)
    response = here.post(
        reverse("password_change"),
        {
            "old_password": "correct horse 42",
            "new_password1": "a much longer passphrase 2026",
            "new_password2": "a much longer passphrase 2026",
        },
    )
    assert response.status_code == 302 and response.url == reverse("password_change_done")
    assert here.get(reverse("administration")).status_code == 200
    assert elsewhere.get(reverse("administration")).status_code == 302


def test_a_weak_new_password_is_refused_next_to_its_field(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("password_change"),
        {"old_password": "correct horse 42", "new_password1": "123", "new_password2": "123"},
    )
    assert response.status_code == 200
    assert 'id="row_new_password2"' in response.content.decode()
    assert "too short" in response.content.decode()


def test_a_reset_link_goes_out_through_the_outbox_and_works_once(
    sandbox: Any, admin_user: User, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    save(sandbox.form_values())
    client = Client()
    response = client.post(reverse("password_reset"), {"email": admin_user.email})
    assert response.status_code == 302
    outbox.outbox_deliver_due()
    (envelope, content) = sandbox.exchange.delivered[0]
    assert envelope.rcpt_tos == [admin_user.email]
    body = email.message_from_bytes(content, policy=email.policy.default).get_content()
    link = re.search(r"https?://\S+/login/reset/\S+/\S+/", body)
    assert link is not None, body
    path = "/" + link.group(0).split("/", 3)[3]

    form = client.get(path, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "brand new passphrase 77", "new_password2": "brand new passphrase 77"},
    )
    assert done.status_code == 302
    assert User.objects.get(pk=admin_user.pk).check_password("brand new passphrase 77")
    again = Client().get(path, follow=True)
    assert b'id="reset-link-invalid"' in again.content  # used once: no more


def test_an_unknown_address_gets_the_same_answer_and_no_mail(settings: Any, db: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    response = Client().post(reverse("password_reset"), {"email": "nobody@nowhere.example"})
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert not Email.objects.exists()  # nothing queued for an address no account has


def test_reset_requests_are_limited_per_address(admin_user: User, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = Client()
    for _ in range(3):
        assert client.post(reverse("password_reset"), {"email": admin_user.email}).url == reverse(
            "password_reset_done"
        )
    fourth = client.post(reverse("password_reset"), {"email": admin_user.email})
    assert fourth.url == reverse("password_reset")
    assert len(mail.outbox) == 3
