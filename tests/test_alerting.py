"""Alerts outside mail (Administration > Alerts): Apprise destinations on a local HTTP
receiver, each occurrence delivered once, failures retried and shown, stale alerts dropped,
destination URLs never in clear."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from activity.models import Entry, Kind
from activity.service import activity_record
from alerting import service, watch
from alerting.models import Destination, Notice, NoticeState
from smtp_settings.models import MailHealthCheck, WorkerHeartbeat
from smtp_settings.monitoring import health_check, reminders
from smtp_settings.signals import outbox_turned

from .alert_receiver import AlertReceiver, alert_receiver  # noqa: F401  (the fixture)
from .sandbox.directory import EXCHANGE_RESOURCE
from .test_outbox_worker import ROOT, database_url_for_workers, wait_for
from .test_reminders import configured, days_before
from .test_worker_as_make_run_starts_it import procfile_worker  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "s3cr3t-hook-token-4821"


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def admin() -> Client:
    user = User.objects.create_superuser("boss", "boss@sandbox.example", "a long passphrase 1")
    client = Client()
    client.force_login(user)
    return client


def checked() -> MailHealthCheck:
    check = health_check.mail_health_check_run()
    assert check is not None
    return check


def outbox_turns(kind: Kind, summary: str) -> None:
    """What the outbox does when it holds or releases: an activity entry, and its signal
    (a hold with a message held)."""
    if kind == Kind.OUTBOX_HELD:
        from django.core import mail

        from smtp_settings.models import Delivery

        mail.send_mail("Waiting", "Body", None, ["it@x.example"])
        Delivery.objects.filter(email__subject="Waiting").update(state="held")
    entry = activity_record(kind=kind, summary=summary)
    turn = "held" if kind == Kind.OUTBOX_HELD else "released"
    outbox_turned.send(None, turn=turn, summary=entry.summary, at=entry.at, entry_id=entry.pk)


def deliver_everything() -> None:
    """What the raising process's thread and beat's sweep do, run here to the end."""
    for thread in threading.enumerate():
        if thread.name.startswith("alert-"):
            thread.join(30)
    service.alerts_deliver_due()


def test_a_reminder_reaches_every_destination_once_across_two_runs_and_two_senders(
    sandbox: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    configured(sandbox)
    User.objects.create_superuser("boss", "boss@sandbox.example", "a long passphrase 1")
    for name in ("one", "two"):
        service.destination_add(label=name, url=alert_receiver.url(f"/{name}/{TOKEN}"))
    assert reminders.secret_expiry_reminders_send(now=days_before(7)).sent
    assert not reminders.secret_expiry_reminders_send(now=days_before(7)).sent  # beat again
    # Two senders at once (two workers' sweeps), and the raising process's own thread.
    senders = [threading.Thread(target=service.alerts_deliver_due) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)
    deliver_everything()
    for name in ("one", "two"):
        assert alert_receiver.titles(f"/{name}/{TOKEN}") == [
            "The SMTP client secret expires in 7 days"
        ]
    assert set(Notice.objects.values_list("state", flat=True)) == {NoticeState.SENT}


def test_a_failing_destination_is_retried_and_shown_and_the_others_still_receive(
    admin: Client,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    good = service.destination_add(label="Ops", url=alert_receiver.url(f"/ok/{TOKEN}"))
    bad = service.destination_add(label="Broken hook", url=alert_receiver.url(f"/fail/{TOKEN}"))
    outbox_turns(Kind.OUTBOX_HELD, "Outbox held: 3 message(s) wait.")
    deliver_everything()
    assert alert_receiver.titles(f"/ok/{TOKEN}") == [
        "Mail is held: nothing leaves the console's outbox"
    ]
    assert alert_receiver.received[0][1]["type"] == "failure"
    failing = Notice.objects.get(destination=bad)
    assert failing.state == NoticeState.PENDING and failing.attempts == 1
    assert failing.next_attempt_at > timezone.now()
    # Beat's sweep a minute later tries it again.
    service.alerts_deliver_due(now=timezone.now() + timedelta(minutes=2))
    failing.refresh_from_db()
    assert failing.attempts == 2 and "500" in failing.last_error
    page = admin.get(reverse("alerting:alerts")).content.decode()
    assert "Broken hook" in page and "500" in page
    # When it is tried next is on the page: the administrator knows whether to wait.
    assert f'next try <time datetime="{failing.next_attempt_at.isoformat()}' in page
    assert Destination.objects.get(pk=good.pk).last_failed_at is None


def test_a_failure_alert_made_untrue_by_the_recovery_is_not_delivered(
    sandbox: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    configured(sandbox)
    User.objects.create_superuser("boss", "boss@sandbox.example", "a long passphrase 1")
    # The destination is down when the failure alert would go: it waits for a retry...
    destination = service.destination_add(label="Ops", url=alert_receiver.url(f"/fail/{TOKEN}"))
    sandbox.app.roles[EXCHANGE_RESOURCE] = []  # admin consent withdrawn
    assert not checked().ok
    deliver_everything()
    stale = Notice.objects.get(alert__kind="health.failed")
    assert stale.state == NoticeState.PENDING and stale.attempts == 1
    # ...and the fix comes first: the failure is no longer true and never leaves.
    Destination.objects.filter(pk=destination.pk).update(url=alert_receiver.url(f"/ok/{TOKEN}"))
    sandbox.app.roles[EXCHANGE_RESOURCE] = ["SMTP.SendAsApp"]
    assert checked().ok
    deliver_everything()
    service.alerts_deliver_due(now=timezone.now() + timedelta(hours=2))
    stale.refresh_from_db()
    assert stale.state == NoticeState.DROPPED
    assert alert_receiver.titles() == ["Mail works again: the health check passed"]


def test_the_outbox_released_drops_an_undelivered_hold_alert(
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    destination = service.destination_add(label="Ops", url=alert_receiver.url(f"/fail/{TOKEN}"))
    outbox_turns(Kind.OUTBOX_HELD, "Outbox held: 2 message(s) wait.")
    deliver_everything()
    Destination.objects.filter(pk=destination.pk).update(url=alert_receiver.url(f"/ok/{TOKEN}"))
    outbox_turns(Kind.OUTBOX_RELEASED, "Released 2 held message(s).")
    deliver_everything()
    assert alert_receiver.titles() == []  # a release is not yet mail leaving...
    outbox_turned.send(None, turn="sent", began=timezone.now())  # ...a message sent is
    deliver_everything()
    service.alerts_deliver_due(now=timezone.now() + timedelta(hours=2))
    assert alert_receiver.titles() == ["Mail leaves again: the held messages were released"]
    # Services mark alerts by how bad the news is (Apprise's notify type).
    assert [body["type"] for _, body in alert_receiver.received] == ["success"]
    assert Notice.objects.get(alert__kind="outbox.held").state == NoticeState.DROPPED


def test_a_test_alert_shows_the_services_answer(
    admin: Client,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    good = service.destination_add(label="Ops", url=alert_receiver.url(f"/ok/{TOKEN}"))
    bad = service.destination_add(label="Broken", url=alert_receiver.url(f"/fail/{TOKEN}"))
    page = admin.post(reverse("alerting:test", args=[good.pk]), follow=True).content.decode()
    assert "Test alert delivered to “Ops”" in page
    assert alert_receiver.titles() == ["Test alert from SEI Administration"]
    page = admin.post(reverse("alerting:test", args=[bad.pk]), follow=True).content.decode()
    assert "“Broken” did not take the test alert" in page and "500" in page
    assert admin.post(reverse("alerting:test", args=[999999])).status_code == 404


def test_a_destination_that_never_answers_ends_at_the_deadline(monkeypatch: Any) -> None:
    import socket

    # A server that accepts the connection and never answers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        monkeypatch.setattr(service, "SEND_SECONDS", 1.0)
        destination = service.destination_add(
            label="Silent", url=f"json://127.0.0.1:{listener.getsockname()[1]}/{TOKEN}"
        )
        outcome = service.destination_test(destination=destination)
    finally:
        listener.close()
    assert not outcome.ok and "within 1 s" in outcome.answer


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://example.invalid/hook", "Apprise does not know this URL"),
        ("nonsense://x", "Apprise does not know this URL"),
        ("jsons://127.0.0.1/hook?verify=no", "certificate checks off"),
        ("json://127.0.0.1/a\nb", "control character"),
    ],
)
def test_a_url_apprise_cannot_use_is_refused_next_to_the_field(
    admin: Client, url: str, said: str
) -> None:
    response = admin.post(reverse("alerting:alerts"), {"label": "Ops", "url": url})
    assert response.status_code == 400
    assert said in response.content.decode()
    assert not Destination.objects.exists()


def test_destination_urls_never_appear_in_clear(
    admin: Client,
    alert_receiver: AlertReceiver,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    response = admin.post(
        reverse("alerting:alerts"),
        {"label": "Ops", "url": alert_receiver.url(f"/fail/{TOKEN}")},
        follow=True,
    )
    assert "“Ops” (JSON) added" in response.content.decode()
    destination = Destination.objects.get()
    service.destination_test(destination=destination)
    outbox_turns(Kind.OUTBOX_HELD, "Outbox held.")
    deliver_everything()
    page = admin.get(reverse("alerting:alerts")).content.decode()
    assert "500" in page
    assert TOKEN not in page
    assert TOKEN not in caplog.text
    with connection.cursor() as cursor:
        cursor.execute("SELECT url, masked_url, last_error FROM alerting_destination")
        stored = " ".join(str(value) for value in cursor.fetchone())
        cursor.execute("SELECT last_error FROM alerting_notice")
        stored += " ".join(str(row[0]) for row in cursor.fetchall())
    assert TOKEN not in stored
    assert destination.url == alert_receiver.url(f"/fail/{TOKEN}")  # decrypted, for sending


def test_the_alerts_page_is_for_administrators_only(client: Client) -> None:
    client.force_login(User.objects.create_user("plain", "plain@sandbox.example", "a passphrase"))
    assert client.get(reverse("alerting:alerts")).status_code == 403
    assert (
        client.post(reverse("alerting:alerts"), {"label": "x", "url": "json://x"}).status_code
        == 403
    )
    assert not Destination.objects.exists()


@pytest.mark.worker
def test_a_stopped_worker_is_a_banner_and_an_alert_and_its_return_an_alert_too(
    admin: Client,
    sandbox: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
    procfile_worker: Any,  # noqa: F811
    settings: Any,
) -> None:
    # Reports every second, gone after three missed ones (and two 1 s drains): in 3 s.
    beat = {"SEI_HEARTBEAT_SECONDS": "1"}
    # (The watch runs here: its rule reads this process's settings.)
    settings.SEI_HEARTBEAT_SECONDS, settings.SMTP_OUTBOX_DRAIN_SECONDS = 1.0, 1.0
    service.destination_add(label="Ops", url=alert_receiver.url(f"/ok/{TOKEN}"))
    worker = procfile_worker(**beat)
    wait_for(lambda: WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.WORKER).exists())
    watching = watch.start(interval=0.5)  # what each web process runs (gunicorn.conf.py)
    try:
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: "The Celery worker stopped reporting" in alert_receiver.titles())
            page = admin.get(reverse("administration")).content.decode()
            assert 'id="banner-worker-gone"' in page and 'id="banner-beat-gone"' in page
            assert "The Celery worker is stopped" in page
            # Every Administration page carries the banner, Manage SMTP included.
            page = admin.get(reverse("smtp_settings:manage")).content.decode()
            assert 'id="banner-worker-gone"' in page
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        wait_for(lambda: len(alert_receiver.titles()) >= 4)
        assert "banner-worker-gone" not in admin.get(reverse("administration")).content.decode()
    finally:
        watching.set()
    titles = alert_receiver.titles()
    # Beat runs as a thread of that worker here: it stopped and came back with it.
    assert sorted(titles) == sorted(
        [
            "The Celery worker stopped reporting",
            "The Celery worker runs again",
            "The Celery beat stopped reporting",
            "The Celery beat runs again",
        ]
    ), titles
    said = {body["title"]: body for _, body in alert_receiver.received}
    assert "waiting mail leaves now" in said["The Celery worker runs again"]["message"]
    assert "reminders, health checks" in said["The Celery beat runs again"]["message"]


@pytest.mark.worker
def test_saving_working_settings_clears_a_failed_health_check_at_once(
    admin: Client,
    sandbox: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
    procfile_worker: Any,  # noqa: F811
) -> None:
    configured(sandbox)
    service.destination_add(label="Ops", url=alert_receiver.url(f"/ok/{TOKEN}"))
    sandbox.app.roles[EXCHANGE_RESOURCE] = []  # admin consent withdrawn
    assert not checked().ok
    assert 'id="banner-health-failed"' in admin.get(reverse("administration")).content.decode()
    assert admin.get("/healthz", HTTP_ACCEPT="application/json").json()["Mail()"] != "OK"

    sandbox.app.roles[EXCHANGE_RESOURCE] = ["SMTP.SendAsApp"]  # consent granted again
    procfile_worker()
    configured(sandbox)  # Save, as the page does
    # The failure judged the settings before this Save: its banner goes at once...
    assert "banner-health-failed" not in admin.get(reverse("administration")).content.decode()
    # ...and the check Save asked for runs on the worker, and says so everywhere.
    wait_for(lambda: MailHealthCheck.objects.filter(ok=True).exists())
    wait_for(lambda: "Mail works again: the health check passed" in alert_receiver.titles())
    assert "banner-health-failed" not in admin.get(reverse("administration")).content.decode()
    assert admin.get("/healthz", HTTP_ACCEPT="application/json").json()["Mail()"] == "OK"


def test_a_message_failed_for_good_is_alerted_once(
    sandbox: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    from django.core import mail

    from smtp_settings import outbox

    from .sandbox.world import SENDER
    from .test_sending import save

    save(sandbox.form_values())
    service.destination_add(label="Ops", url=alert_receiver.url(f"/ok/{TOKEN}"))
    sandbox.exchange.handler.recipient_answers["nobody@sandbox.example"] = (
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found"
    )
    mail.send_mail("Lost", "Body", SENDER, ["nobody@sandbox.example"])
    mail.send_mail("Fine", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    deliver_everything()
    service.alerts_deliver_due(now=timezone.now() + timedelta(hours=2))
    assert alert_receiver.titles() == ["A message failed for good and will not be sent"]
    _, body = alert_receiver.received[0]
    assert "nobody@sandbox.example" in body["message"] and "5.1.10" in body["message"]
    assert body["type"] == "failure"


def test_a_reminder_reaches_destinations_when_no_administrator_has_an_address(
    sandbox: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    configured(sandbox)
    User.objects.create_superuser("solo", "", "a long passphrase 1")
    service.destination_add(label="Ops", url=alert_receiver.url(f"/ok/{TOKEN}"))
    report = reminders.secret_expiry_reminders_send(now=days_before(7))
    assert report.sent and report.recipients == []
    deliver_everything()
    assert alert_receiver.titles() == ["The SMTP client secret expires in 7 days"]


def test_destination_changes_are_in_activity_with_who_and_never_the_url(
    admin: Client,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    admin.post(
        reverse("alerting:alerts"), {"label": "Ops", "url": alert_receiver.url(f"/ok/{TOKEN}")}
    )
    destination = Destination.objects.get()
    admin.post(reverse("alerting:test", args=[destination.pk]))
    admin.post(reverse("alerting:remove", args=[destination.pk]))
    entries = list(
        Entry.objects.filter(kind__startswith="alerts.")
        .order_by("at", "pk")
        .values_list("kind", "actor_name", "summary")
    )
    assert [(kind, actor) for kind, actor, _ in entries] == [
        (Kind.ALERT_DESTINATION_ADDED, "boss"),
        (Kind.ALERT_DESTINATION_TESTED, "boss"),
        (Kind.ALERT_DESTINATION_REMOVED, "boss"),
    ]
    assert "“Ops” added: JSON" in entries[0][2] and "delivered" in entries[1][2]
    assert all(TOKEN not in summary for _, _, summary in entries)
    page = admin.get(reverse("activity")).content.decode()
    assert "Alert destination removed" in page and TOKEN not in page


def test_a_command_that_raises_an_alert_waits_for_its_delivery_before_it_exits(
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    service.destination_add(label="Ops", url=alert_receiver.url(f"/ok/{TOKEN}"))
    # A separate process, as `make manage ARGS=...` is: it raises and exits at once.
    script = (
        "import django; django.setup()\n"
        "from alerting.service import alert_raise\n"
        "alert_raise(key='cli-1', kind='secret.expiry', title='Raised by a command', body='b')\n"
    )
    env = {**os.environ, "DATABASE_URL": database_url_for_workers(),
           "DJANGO_SETTINGS_MODULE": "sei_admin.settings"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    # No sweep ran: the process itself delivered before it ended.
    assert alert_receiver.titles() == ["Raised by a command"]
    assert Notice.objects.get().state == NoticeState.SENT
