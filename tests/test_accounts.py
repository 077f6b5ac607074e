"""Password change for the signed-in administrator, and password reset by e-mail through
the outbox to the sandbox's Exchange stand-in."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from post_office.models import Email

from activity.models import Entry, Kind
from smtp_settings import outbox

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


def _file_cache(tmp_path: Any) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }


def _redis_cache(_: Any) -> dict[str, Any]:
    import os

    if not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    from django.conf import settings

    return settings.CACHES


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("caches", [_file_cache, _redis_cache], ids=["file-cache", "redis"])
def test_twenty_simultaneous_reset_requests_send_three_mails(
    admin_user: User, settings: Any, tmp_path: Any, caches: Any
) -> None:
    import threading

    from django.db import connection

    settings.CACHES = caches(tmp_path)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    start = threading.Barrier(20)
    answers: list[str] = []

    def ask() -> None:
        client = Client()
        start.wait()
        try:
            answers.append(client.post(reverse("password_reset"), {"email": admin_user.email}).url)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers.count(reverse("password_reset_done")) == 3, answers
    assert answers.count(reverse("password_reset")) == 17
    assert len(mail.outbox) == 3


def change(client: Client, old: str) -> Any:
    return client.post(
        reverse("password_change"),
        {
            "old_password": old,
            "new_password1": "a much longer passphrase 2026",
            "new_password2": "a much longer passphrase 2026",
        },
    )


def test_a_wrong_current_password_counts_as_a_failed_sign_in(
    admin_client: Client, admin_user: User
) -> None:
    response = change(admin_client, "a guess 1")
    assert response.status_code == 200 and "old_password" in response.content.decode()
    attempt = AccessAttempt.objects.get()
    assert attempt.failures_since_start == 1
    # What axes keeps of the form has no password in it, wrong or new.
    assert "a guess 1" not in attempt.post_data and "a much longer" not in attempt.post_data
    entry = Entry.objects.get(kind=Kind.PASSWORD_WRONG)
    assert entry.actor == admin_user and "Change password" in entry.summary
    assert "a guess" not in entry.summary


def test_guessing_the_current_password_locks_and_ends_the_session(
    admin_client: Client, admin_user: User
) -> None:
    for attempt in range(4):
        assert change(admin_client, f"guess {attempt}").status_code == 200
    locked = change(admin_client, "guess 4")
    assert locked.status_code == 429 and 'id="locked-out"' in locked.content.decode()
    assert "15 minutes" in locked.content.decode()
    assert admin_client.get(reverse("home")).status_code == 302  # signed out
    # Counted with sign-in failures for the same user: signing in is locked too.
    signin = Client().post(
        reverse("login"), {"username": "root-admin", "password": "correct horse 42"}
    )
    assert signin.status_code == 429
    assert User.objects.get(pk=admin_user.pk).check_password("correct horse 42")


def test_a_locked_user_cannot_change_the_password_even_with_the_right_one(
    admin_user: User,
) -> None:
    for attempt in range(5):
        Client().post(reverse("login"), {"username": "root-admin", "password": f"no {attempt}"})
    here = Client()
    here.force_login(admin_user)
    assert change(here, "correct horse 42").status_code == 429
    assert User.objects.get(pk=admin_user.pk).check_password("correct horse 42")


def test_a_changed_password_is_in_the_activity(admin_client: Client, admin_user: User) -> None:
    assert change(admin_client, "correct horse 42").status_code == 302
    entry = Entry.objects.get(kind=Kind.PASSWORD_CHANGED)
    assert entry.actor == admin_user and "passphrase" not in entry.summary
    page = admin_client.get(reverse("activity")).content.decode()
    assert '<td data-label="What">Password changed</td>' in page


def test_reset_requests_and_completions_are_in_the_activity(
    admin_user: User, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = Client()
    client.post(reverse("password_reset"), {"email": admin_user.email})
    client.post(reverse("password_reset"), {"email": "nobody@nowhere.example"})
    requested = list(
        Entry.objects.filter(kind=Kind.PASSWORD_RESET_REQUESTED)
        .order_by("pk")
        .values_list("summary", "actor")
    )
    # The same words whether or not an account matched, and nobody named.
    assert requested == [
        (f"Password reset e-mail requested for <{admin_user.email}>.", None),
        ("Password reset e-mail requested for <nobody@nowhere.example>.", None),
    ]
    (message,) = mail.outbox
    path = re.search(r"https?://[^/\s]+(/login/reset/\S+/\S+/)", message.body).group(1)
    form = client.get(path, follow=True)
    client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "brand new passphrase 77", "new_password2": "brand new passphrase 77"},
    )
    entry = Entry.objects.get(kind=Kind.PASSWORD_RESET_COMPLETED)
    assert entry.actor == admin_user and "passphrase" not in entry.summary


def test_the_outbox_does_not_show_a_reset_link_but_delivers_it(
    sandbox: Any, admin_user: User, admin_client: Client, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    save(sandbox.form_values())
    Client().post(reverse("password_reset"), {"email": admin_user.email})
    queued = Email.objects.get()
    token_path = re.search(r"/login/reset/\S+/\S+/", queued.message).group(0)
    page = admin_client.get(reverse("smtp_settings:outbox_message", args=[queued.pk]))
    text = page.content.decode()
    assert page.status_code == 200 and 'id="message-withheld"' in text
    assert "one-time sign-in link" in text
    assert token_path not in text and 'id="message-body"' not in text
    listing = admin_client.get(reverse("smtp_settings:outbox")).content.decode()
    assert token_path not in listing
    outbox.outbox_deliver_due()
    (_, content) = sandbox.exchange.delivered[0]
    body = email.message_from_bytes(content, policy=email.policy.default).get_content()
    assert token_path in body  # delivered intact
    # Use sender email replaced the address Django wrote it with: the page leads with the one used.
    text = admin_client.get(reverse("smtp_settings:outbox_message", args=[queued.pk])).content
    sender = sandbox.form_values()["sender_email"]
    assert f"<dd>{sender} <span" in text.decode() and 'id="from-replaced"' in text.decode()


def test_the_outbox_shows_ordinary_messages(admin_client: Client, settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    mail.send_mail("Hello", "An ordinary body", "a@contoso.example", ["it@contoso.example"])
    page = admin_client.get(reverse("smtp_settings:outbox_message", args=[Email.objects.get().pk]))
    assert "An ordinary body" in page.content.decode()
    assert 'id="message-withheld"' not in page.content.decode()
