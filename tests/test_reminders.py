"""Secret-expiry reminders, the daily health check, the status block and banners, /healthz.

Reminders and alerts go through the outbox to the sandbox's Exchange stand-in; the clock is
moved by passing ``now``, never by sleeping."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sei_admin.celery import app
from smtp_settings import outbox
from smtp_settings.mail import oauth
from smtp_settings.models import Delivery, DeliveryState, SecretReminder, WorkerHeartbeat
from smtp_settings.monitoring import health_check, reminders

from .sandbox.directory import EXCHANGE_RESOURCE
from .sandbox.world import CLIENT_SECRET, SECRET_EXPIRES
from .test_sending import save

pytestmark = pytest.mark.django_db
EXPIRES = datetime(2027, 3, 31, 9, 0, tzinfo=timezone.get_fixed_timezone(0))


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    settings.TIME_ZONE = "UTC"
    settings.SMTP_MAX_MESSAGES_PER_MINUTE = 6000  # the rate limit has tests of its own


@pytest.fixture
def admins(db: Any) -> list[User]:
    """A superuser and a delegated administrator with addresses, and one without."""
    boss = User.objects.create_superuser("boss", "boss@sandbox.example", "a long passphrase 1")
    ops = User.objects.create_user("ops", "ops@sandbox.example", "a long passphrase 2")
    ops.user_permissions.add(Permission.objects.get(codename="change_smtpsettings"))
    User.objects.create_user("nobody", "someone@sandbox.example", "a long passphrase 3")
    mute = User.objects.create_superuser("mute", "", "a long passphrase 4")
    return [boss, ops, mute]


def configured(sandbox: Any, **changes: str) -> None:
    save({**sandbox.form_values(), "secret_expiration_date": "2027-03-31", **changes})


def received(sandbox: Any) -> list[tuple[str, str]]:
    """(recipient, subject) of every message the stand-in accepted."""
    found = []
    for envelope, content in sandbox.exchange.delivered:
        message = email.message_from_bytes(content, policy=email.policy.default)
        found += [(rcpt, str(message["Subject"])) for rcpt in envelope.rcpt_tos]
    return sorted(found)


def days_before(days: int) -> datetime:
    return EXPIRES - timedelta(days=days)


# -- reminders ----------------------------------------------------------------------------


def test_the_right_reminders_go_at_each_threshold_to_every_administrator(
    sandbox: Any, admins: list[User]
) -> None:
    configured(sandbox, alert_recipients="it-team@sandbox.example")
    sent = {}
    for days in (45, 30, 20, 14, 7, 3, 1, 0, -3):
        report = reminders.secret_expiry_reminders_send(now=days_before(days))
        sent[days] = report.threshold
    outbox.outbox_deliver_due()

    assert sent == {
        45: "", 30: "30d", 20: "", 14: "14d", 7: "7d", 3: "3d", 1: "1d", 0: "0d",
        -3: "expired-w1",
    }  # fmt: skip
    recipients = {"boss@sandbox.example", "ops@sandbox.example", "it-team@sandbox.example"}
    got = received(sandbox)
    assert {rcpt for rcpt, _ in got} == recipients  # not the non-admin, not the one without
    assert len(got) == 7 * 3
    subjects = {subject for _, subject in got}
    assert "[SEI Administration] The SMTP client secret expires in 30 days" in subjects
    assert "[SEI Administration] The SMTP client secret expires today" in subjects
    assert "[SEI Administration] The SMTP client secret expired 3 days ago" in subjects


def test_a_reminder_says_which_secret_and_what_to_do(sandbox: Any, admins: list[User]) -> None:
    configured(sandbox)
    reminders.secret_expiry_reminders_send(now=days_before(7))
    outbox.outbox_deliver_due()
    content = sandbox.exchange.delivered[0][1]
    body = email.message_from_bytes(content, policy=email.policy.default).get_content()
    assert sandbox.form_values()["client_id"] in body
    assert "2027-03-31" in body and "in 7 days" in body
    assert "Certificates & secrets" in body and "Validate" in body
    assert "/administration/smtp/" in body
    assert CLIENT_SECRET not in body


def test_running_the_job_twice_or_at_once_sends_no_second_copy(
    sandbox: Any, admins: list[User]
) -> None:
    configured(sandbox)
    first = reminders.secret_expiry_reminders_send(now=days_before(14))
    again = reminders.secret_expiry_reminders_send(now=days_before(13))
    assert first.sent and not again.sent and "went already" in again.reason
    assert SecretReminder.objects.count() == 1
    assert Delivery.objects.count() == 2  # one message per administrator with an address


@pytest.mark.django_db(transaction=True)
def test_two_processes_at_once_send_one_series(sandbox: Any, admins: list[User]) -> None:
    configured(sandbox)
    reports: list[Any] = []
    start = threading.Barrier(4)

    def job() -> None:
        start.wait()
        try:
            reports.append(reminders.secret_expiry_reminders_send(now=days_before(3)))
        finally:
            connection.close()

    threads = [threading.Thread(target=job) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(report.sent for report in reports) == 1
    assert SecretReminder.objects.count() == 1
    assert Delivery.objects.count() == 2


def test_a_new_secret_starts_a_new_series(sandbox: Any, admins: list[User]) -> None:
    configured(sandbox)
    assert reminders.secret_expiry_reminders_send(now=days_before(7)).sent
    sandbox.app.secrets["next~Secret.Value"] = False
    configured(sandbox, client_secret="next~Secret.Value")
    assert reminders.secret_expiry_reminders_send(now=days_before(7)).threshold == "7d"
    configured(sandbox, secret_expiration_date="2027-03-30")  # a new date: a new series too
    assert reminders.secret_expiry_reminders_send(now=days_before(7)).threshold == "7d"


def test_alert_off_sends_nothing(sandbox: Any, admins: list[User]) -> None:
    configured(sandbox, secret_expiration_alert="")
    report = reminders.secret_expiry_reminders_send(now=days_before(1))
    assert not report.sent and "off" in report.reason
    assert not Delivery.objects.exists()


def test_no_administrator_with_an_address_is_said_on_the_page(sandbox: Any) -> None:
    user = User.objects.create_superuser("solo", "", "a long passphrase 5")
    configured(sandbox)
    report = reminders.secret_expiry_reminders_send(now=days_before(1))
    assert report.sent and report.recipients == []
    assert "went only to the alert destinations" in report.reason
    assert not Delivery.objects.exists()  # no e-mail
    client = Client()
    client.force_login(user)
    page = client.get(reverse("smtp_settings:manage")).content.decode()
    assert "Reminders reach nobody by e-mail" in page


def test_the_management_command_says_what_it_sent_and_to_whom(
    sandbox: Any, admins: list[User]
) -> None:
    configured(
        sandbox, secret_expiration_date=(timezone.localdate() + timedelta(days=3)).isoformat()
    )
    out = StringIO()
    call_command("send_secret_expiry_reminders", stdout=out)
    assert "3d reminder" in out.getvalue()
    assert "boss@sandbox.example" in out.getvalue() and "ops@sandbox.example" in out.getvalue()
    out = StringIO()
    call_command("send_secret_expiry_reminders", stdout=out)
    assert "No reminder sent" in out.getvalue() and "went already" in out.getvalue()


def test_a_reminder_after_expiry_is_held_then_delivered_when_a_secret_is_saved(
    sandbox: Any, admins: list[User], admin_client: Client
) -> None:
    configured(sandbox)
    sandbox.app.secrets[CLIENT_SECRET] = True  # Entra now refuses it: AADSTS7000222
    oauth.forget_applications()
    assert reminders.secret_expiry_reminders_send(now=days_before(-1)).sent
    outbox.outbox_deliver_due()
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.HELD}
    page = admin_client.get(reverse("administration")).content.decode()
    assert 'id="banner-mail-held"' in page

    sandbox.app.secrets["renewed~Secret.Value"] = False
    configured(sandbox, client_secret="renewed~Secret.Value", secret_expiration_date="2028-06-30")
    outbox.outbox_deliver_due()
    assert {rcpt for rcpt, _ in received(sandbox)} == {
        "boss@sandbox.example",
        "ops@sandbox.example",
        "admin@example.test",  # the signed-in administrator of admin_client
    }


# -- the health check ---------------------------------------------------------------------


def test_consent_removed_alerts_once_and_recovery_alerts_once(
    sandbox: Any, admins: list[User]
) -> None:
    configured(sandbox)
    passed = health_check.mail_health_check_run()
    assert passed is not None and passed.ok
    sandbox.app.roles[EXCHANGE_RESOURCE] = []  # admin consent withdrawn
    first = health_check.mail_health_check_run()
    second = health_check.mail_health_check_run()
    assert first is not None and not first.ok and first.alerted
    assert first.diagnosis and "SMTP.SendAsApp" in first.detail
    assert second is not None and not second.alerted
    sandbox.app.roles[EXCHANGE_RESOURCE] = ["SMTP.SendAsApp"]
    recovered = health_check.mail_health_check_run()
    assert recovered is not None and recovered.ok and recovered.alerted
    outbox.outbox_deliver_due()
    # The failure alerts had not left when the check passed: no longer true, they never do.
    subjects = sorted({subject for _, subject in received(sandbox)})
    assert subjects == ["[SEI Administration] Mail works again: the health check passed"]
    assert len(received(sandbox)) == 2  # one alert, two administrators
    # Nobody heard of the failure: the recovery says what it was.
    recovery = Delivery.objects.filter(email__subject__contains="Mail works again").first()
    assert (
        "What had failed" in recovery.email.message and "SMTP.SendAsApp" in recovery.email.message
    )
    failures = Delivery.objects.filter(email__subject__contains="Mail will fail")
    assert set(failures.values_list("state", flat=True)) == {DeliveryState.FAILED}


def test_the_health_check_can_be_started_from_the_page(
    sandbox: Any, admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    configured(sandbox)
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(reverse("smtp_settings:health_check"))
    assert response.status_code == 302
    assert len(callbacks) == 1  # the task is enqueued, not run in the request


# -- status at a glance, banners ------------------------------------------------------------


def test_status_block_and_banners_follow_the_secret(sandbox: Any, admin_client: Client) -> None:
    soon = timezone.localdate() + timedelta(days=5)
    configured(sandbox, secret_expiration_date=soon.isoformat())
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert 'id="mail-status"' in page and "Expires in 5 days" in page
    assert 'class="urgency-urgent"' in page
    assert 'id="banner-secret-expiring"' in page
    assert "No  is stored" not in page and "No is stored" not in page  # status is not a field's
    index = admin_client.get(reverse("administration")).content.decode()
    assert 'id="mail-status"' in index and 'id="banner-secret-expiring"' in index
    far = timezone.localdate() + timedelta(days=200)
    configured(sandbox, secret_expiration_date=far.isoformat())
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert "banner-secret" not in page and "Expires in 200 days" in page


def test_banners_are_for_administrators_only(sandbox: Any, plain_user: User) -> None:
    configured(sandbox, secret_expiration_date=timezone.localdate().isoformat())
    client = Client()
    client.force_login(plain_user)
    assert "banner-secret" not in client.get(reverse("home")).content.decode()


# -- /healthz --------------------------------------------------------------------------------


HEALTHZ_TOKEN = "monitoring-token-0123456789abcdef"


def probe(path: str, client: Client | None = None, **headers: str) -> Any:
    """GET in a thread of its own: the health view is async, and a browser test may have
    left an event loop running in this thread."""
    answers: list[Any] = []
    client = client or Client()
    headers.setdefault("HTTP_ACCEPT", "application/json")
    thread = threading.Thread(target=lambda: answers.append(client.get(path, **headers)))
    thread.start()
    thread.join(timeout=30)
    return answers[0]


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_without_a_worker_and_200_with_one(sandbox: Any, settings: Any) -> None:
    configured(sandbox, secret_expiration_date=SECRET_EXPIRES)
    WorkerHeartbeat.objects.create(worker="beat@test", role="beat", seen_at=timezone.now())
    # Why it fails is for monitoring with the token (anonymous callers: test below).
    settings.SEI_HEALTHZ_TOKEN = HEALTHZ_TOKEN
    down = probe("/healthz", HTTP_AUTHORIZATION=f"Bearer {HEALTHZ_TOKEN}")
    assert down.status_code == 503
    assert any("worker" in str(value).lower() for value in down.json().values())

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        app.send_task("smtp_settings.tasks.worker_heartbeat")
        deadline = timezone.now() + timedelta(seconds=30)
        while timezone.now() < deadline:
            if WorkerHeartbeat.objects.filter(role="worker").exists():
                break
            time.sleep(0.05)
        up = probe("/healthz")
    assert up.status_code == 200, up.json()
    assert set(up.json().values()) == {"OK"}
    assert CLIENT_SECRET not in up.content.decode()

    # A worker gone quiet for longer than three heartbeats counts as stopped.
    WorkerHeartbeat.objects.filter(role="worker").update(
        seen_at=timezone.now() - timedelta(minutes=10)
    )
    assert probe("/healthz").status_code == 503
    assert probe("/healthz/live").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_healthz_tells_anonymous_callers_only_that_a_check_failed(
    sandbox: Any, settings: Any
) -> None:
    # Mail is broken (the secret has expired) and no worker reports: the words name both.
    configured(sandbox, secret_expiration_date="2020-01-01")
    settings.SEI_HEALTHZ_TOKEN = HEALTHZ_TOKEN
    for accept in ("application/json", "text/plain", "text/html"):
        anonymous = probe("/healthz", HTTP_ACCEPT=accept)
        assert anonymous.status_code == 503
        text = anonymous.content.decode()
        assert "unavailable" in text
        assert "has reported" not in text and "expired" not in text, text
    assert set(probe("/healthz").json().values()) == {"OK", "unavailable"}
    wrong = probe("/healthz", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert set(wrong.json().values()) == {"OK", "unavailable"}


def check(answer: dict[str, str], name: str) -> str:
    """A check's value in /healthz's JSON, whose keys are the checks' repr."""
    (value,) = (value for key, value in answer.items() if key.startswith(name))
    return value


@pytest.mark.django_db(transaction=True)
def test_healthz_tells_administrators_and_the_token_why(
    sandbox: Any, settings: Any, admin_user: Any, plain_user: Any
) -> None:
    configured(sandbox, secret_expiration_date="2020-01-01")
    settings.SEI_HEALTHZ_TOKEN = HEALTHZ_TOKEN
    with_token = probe("/healthz", HTTP_AUTHORIZATION=f"Bearer {HEALTHZ_TOKEN}").json()
    admin = Client()
    admin.force_login(admin_user)
    signed_in = probe("/healthz", admin).json()
    for answer in (with_token, signed_in):
        assert "No worker has reported yet" in check(answer, "Worker(")
        assert "expired" in check(answer, "Mail(")
    user = Client()
    user.force_login(plain_user)
    assert set(probe("/healthz", user).json().values()) == {"OK", "unavailable"}
    # No token configured: no Bearer value opens the words.
    settings.SEI_HEALTHZ_TOKEN = ""
    answer = probe("/healthz", HTTP_AUTHORIZATION="Bearer ").json()
    assert check(answer, "Worker(") == "unavailable"


@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_with_a_warning_while_the_secret_expires_soon(
    sandbox: Any, settings: Any
) -> None:
    soon = timezone.localdate() + timedelta(days=3)
    configured(sandbox, secret_expiration_date=soon.isoformat())
    for role in ("worker", "beat"):
        WorkerHeartbeat.objects.create(worker=f"{role}@here", role=role, seen_at=timezone.now())
    settings.SEI_HEALTHZ_TOKEN = HEALTHZ_TOKEN
    answer = probe("/healthz", HTTP_AUTHORIZATION=f"Bearer {HEALTHZ_TOKEN}")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert check(body, "Mail(") == "OK"
    assert any("expires in 3 days" in text for text in body["Warnings"])
    text = probe("/healthz", HTTP_AUTHORIZATION=f"Bearer {HEALTHZ_TOKEN}", HTTP_ACCEPT="text/plain")
    assert "Warning: The client secret expires in 3 days" in text.content.decode()
    page = probe("/healthz", HTTP_AUTHORIZATION=f"Bearer {HEALTHZ_TOKEN}", HTTP_ACCEPT="text/html")
    assert 'id="healthz-warnings"' in page.content.decode()
    assert "The client secret expires in 3 days" in page.content.decode()
    # Anonymous callers learn only that every check is OK.
    anonymous = probe("/healthz")
    assert anonymous.status_code == 200 and "Warnings" not in anonymous.json()
    assert "healthz-warnings" not in probe("/healthz", HTTP_ACCEPT="text/html").content.decode()
    # Once it has expired, mail cannot leave: 503.
    configured(sandbox, secret_expiration_date="2020-01-01")
    assert probe("/healthz", HTTP_AUTHORIZATION=f"Bearer {HEALTHZ_TOKEN}").status_code == 503


def test_a_reminder_for_one_recipient_says_one_recipient(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    User.objects.create_superuser("solo", "solo@sandbox.example", "a long passphrase 5")
    configured(sandbox)
    with caplog.at_level("INFO", logger="smtp_settings.monitoring.reminders"):
        assert reminders.secret_expiry_reminders_send(now=days_before(30)).sent
    assert "Secret-expiry reminder 30d queued for 1 recipient" in caplog.text
    assert "1 recipients" not in caplog.text


def test_a_failure_alert_made_untrue_by_a_save_never_leaves(
    sandbox: Any, admins: list[User]
) -> None:
    configured(sandbox)
    sandbox.app.roles[EXCHANGE_RESOURCE] = []  # admin consent withdrawn
    failed = health_check.mail_health_check_run()
    assert failed is not None and not failed.ok  # "Mail will fail" queued for each admin
    waiting = Delivery.objects.filter(email__subject__startswith="[SEI Administration] Mail will")
    assert waiting.count() == 2
    # Consent granted again and the settings saved: the queued alerts wait for the check...
    sandbox.app.roles[EXCHANGE_RESOURCE] = ["SMTP.SendAsApp"]
    configured(sandbox)
    outbox.outbox_deliver_due()
    assert received(sandbox) == []
    # ...which passes (Save asked for it): they are withdrawn, the recovery goes instead.
    passed = health_check.mail_health_check_run()
    assert passed is not None and passed.ok
    outbox.outbox_deliver_due()
    subjects = {subject for _, subject in received(sandbox)}
    assert subjects == {"[SEI Administration] Mail works again: the health check passed"}
    assert set(waiting.values_list("state", flat=True)) == {DeliveryState.FAILED}
    assert all("no longer true" in row.last_error for row in waiting)
