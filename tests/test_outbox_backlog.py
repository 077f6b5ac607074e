"""The outbox under load, with real Celery worker processes on the configured broker: a
backlog does not keep Validate waiting, a killed worker's claim and connection lease lapse
within seconds, and a message postponed for a connection goes as soon as one frees."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from celery import current_app
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from post_office.models import Email

from smtp_settings import outbox
from smtp_settings.models import Delivery, DeliveryState, MailboxLease
from smtp_settings.outbox import throttle

from .sandbox import exchange
from .sandbox.world import SENDER
from .test_outbox_worker import (
    subjects,
    wait_for,
    worker_process,  # noqa: F401  (the fixture)
)
from .test_sending import save

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def queue_backlog(count: int, prefix: str = "Backlog") -> set[str]:
    """``count`` messages accepted one by one, as as many send_mail() calls would, with the
    rows written in bulk (2,000 send_mail() calls would only make the test slower)."""
    emails = Email.objects.bulk_create(
        Email(from_email=SENDER, to=["it@x.example"], subject=f"{prefix} {n}", message="Body")
        for n in range(count)
    )
    with transaction.atomic():
        for email in emails:
            outbox.outbox_accept(emails=[email])
    return {f"{prefix} {n}" for n in range(count)}


def stop_delivering() -> None:
    """Lets the workers' drains end at once, so that stopping them takes no drain's length."""
    Delivery.objects.filter(state__in=Delivery.PENDING).update(state=DeliveryState.FAILED)


@pytest.mark.parametrize("heartbeat_first", [False, True], ids=["alone", "after-a-heartbeat"])
def test_validate_gets_its_verdict_within_5_seconds_behind_2000_queued_messages(
    sandbox: Any,
    worker_process: Any,  # noqa: F811  (the fixture)
    monkeypatch: pytest.MonkeyPatch,
    heartbeat_first: bool,
) -> None:
    # The sandbox's Exchange allows the drains' connections and Validate's together.
    monkeypatch.setattr(exchange, "MAX_CONNECTIONS_PER_MAILBOX", 10)
    user = User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    admin = Client()
    admin.force_login(user)
    save(sandbox.form_values())
    queue_backlog(2000)
    # Two workers, both busy with the backlog.
    worker_process("one", SMTP_MAX_MESSAGES_PER_MINUTE="1200")
    worker_process("two", SMTP_MAX_MESSAGES_PER_MINUTE="1200")
    wait_for(lambda: len(sandbox.exchange.delivered) >= 30)
    try:
        if heartbeat_first:
            # Beat's heartbeat shares the queue and is nobody's click: its start must not
            # make the drains stop handing their processes over to the Validate run behind it.
            current_app.send_task("smtp_settings.tasks.worker_heartbeat")
        clicked = time.monotonic()
        started = admin.post(
            reverse("smtp_settings:validate"), sandbox.form_values(), HTTP_ACCEPT="application/json"
        ).json()
        status: dict[str, Any] = {}
        while time.monotonic() - clicked < 30:
            status = admin.get(started["status_url"], HTTP_ACCEPT="application/json").json()
            if status["finished"]:
                break
            time.sleep(0.05)
        verdict_after = time.monotonic() - clicked
        assert status["status"] == "passed", status.get("summary")
        assert verdict_after < 5, f"the verdict came {verdict_after:.1f} s after the click"
        # The backlog is still being delivered after the run.
        sent_at_verdict = len(sandbox.exchange.delivered)
        assert sent_at_verdict < 2000
        wait_for(lambda: len(sandbox.exchange.delivered) > sent_at_verdict + 10, timeout=15)
    finally:
        stop_delivering()


def test_sending_resumes_within_15_seconds_after_the_draining_worker_is_killed(
    sandbox: Any,
    worker_process: Any,  # noqa: F811  (the fixture)
) -> None:
    save(sandbox.form_values())
    expected = queue_backlog(120, prefix="Message")
    # One connection for the mailbox: the killed worker's lease is the only one there is.
    env = {
        "SMTP_MAX_CONNECTIONS": "1",
        "SMTP_MAX_MESSAGES_PER_MINUTE": "1200",
        "SMTP_OUTBOX_CLAIM_SECONDS": str(django_settings.SMTP_OUTBOX_CLAIM_SECONDS),
    }
    workers = [worker_process("one", **env), worker_process("two", **env)]
    wait_for(lambda: len(sandbox.exchange.delivered) >= 10)
    holder = MailboxLease.objects.values_list("holder", flat=True).first()
    assert holder, "nobody holds the mailbox's connection"
    killed = next(w for w in workers if f":{w.pid}:" in holder)
    os.killpg(killed.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    killed.wait(timeout=10)
    # What was on its way to the server when the worker died arrives just after: not counted.
    time.sleep(0.5)
    before = len(sandbox.exchange.delivered)
    assert before < 120, "the backlog was sent before the kill"
    wait_for(lambda: len(sandbox.exchange.delivered) > before, timeout=15.5 - 0.5)
    resumed_after = time.monotonic() - killed_at
    assert resumed_after < 15, f"sending resumed {resumed_after:.1f} s after the kill"

    wait_for(lambda: set(Delivery.objects.values_list("state", flat=True)) == {"sent"})
    received = subjects(sandbox)
    assert set(received) == expected  # none lost
    repeated = {subject: n for subject, n in received.items() if n > 1}
    assert sum(repeated.values()) - len(repeated) <= 1, repeated  # only the one in flight


def test_a_message_postponed_for_a_connection_goes_soon_after_one_frees(
    sandbox: Any,
    worker_process: Any,  # noqa: F811  (the fixture)
) -> None:
    save(sandbox.form_values())
    # Every connection the mailbox allows is taken by another worker, which renews its lease
    # while it sends a long message.
    lease = throttle.acquire_lease(SENDER, "elsewhere:1:busy")
    assert lease is not None
    sending_elsewhere = threading.Event()
    sending_elsewhere.set()

    def renew() -> None:
        try:
            while sending_elsewhere.is_set():
                throttle.renew_lease(lease)
                time.sleep(0.5)
        finally:
            connection.close()

    renewer = threading.Thread(target=renew)
    renewer.start()
    try:
        worker_process("one", SMTP_MAX_CONNECTIONS="1")
        queue_backlog(1, prefix="Waiting")

        def postponed() -> bool:
            row = Delivery.objects.select_related("email").get()
            return row.state == DeliveryState.QUEUED and (
                row.next_attempt_at - row.email.created > timedelta(seconds=1)
            )

        wait_for(postponed, timeout=30)
        # It keeps waiting for the connection (postponed again and again), and is not sent.
        time.sleep(4)
        assert not sandbox.exchange.delivered
    finally:
        sending_elsewhere.clear()
        renewer.join()
    throttle.release_leases([lease])
    freed_at = time.monotonic()
    wait_for(lambda: len(sandbox.exchange.delivered) == 1, timeout=40)
    waited = time.monotonic() - freed_at
    # The lease wait is 2 s; beat's sweep (every 30 s) does not run in this test.
    assert waited < 4, f"the message went {waited:.1f} s after the connection freed"
