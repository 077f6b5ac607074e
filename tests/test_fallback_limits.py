"""The fallback connection keeps to Exchange's limits like the primary (issue 20): its own
sender mailbox's message rate and connection count, and a Graph 429's Retry-After for every
message to that mailbox, not the throttled one only."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from smtp_settings import outbox
from smtp_settings.mail import oauth
from smtp_settings.models import Delivery, DeliveryState, MailboxLease, MailboxThrottle

from .sandbox.world import CLIENT_SECRET, SENDER
from .test_fallback import save_fallback_graph, save_primary

pytestmark = pytest.mark.django_db

# The fallback sends as a mailbox of its own: its limits are that mailbox's.
FALLBACK_SENDER = "fallback@sandbox.example"


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


@pytest.fixture
def primary_broken(sandbox: Any, settings: Any) -> Any:
    """Primary SMTP whose secret has expired; fallback Graph as its own mailbox."""
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    sandbox.tenant.add_mailbox(FALLBACK_SENDER)
    save_primary(sandbox.form_values())
    save_fallback_graph(sandbox, sender=FALLBACK_SENDER)
    sandbox.app.secrets[CLIENT_SECRET] = True
    oauth.forget_applications()
    return sandbox


def deliver_all(seconds: float = 30.0) -> None:
    """Drain until nothing waits (a deferred message comes due within seconds)."""
    deadline = time.monotonic() + seconds
    while Delivery.objects.filter(state__in=Delivery.PENDING).exists():
        assert time.monotonic() < deadline, list(Delivery.objects.values("state", "last_error"))
        outbox.outbox_deliver_due()
        time.sleep(0.05)


def test_the_fallback_keeps_to_its_mailboxs_message_rate(
    primary_broken: Any, settings: Any
) -> None:
    settings.SMTP_MAX_MESSAGES_PER_MINUTE = 600  # 10 a second
    for n in range(21):
        mail.send_mail(f"Rate {n}", "Body", SENDER, [f"to{n}@x.example"])
    deliver_all()

    requests = primary_broken.graph.requests
    assert len(requests) == 21 and {r["user"] for r in requests} == {FALLBACK_SENDER}
    assert set(Delivery.objects.values_list("connection", flat=True)) == {"fallback"}
    # Any 11 consecutive messages span at least a second (arrivals are stamped by the
    # stand-in's thread, up to ~0.15 s late); without the limit they came within 0.2 s.
    times = [request["at"] for request in requests]
    spans = [times[i + 10] - times[i] for i in range(len(times) - 10)]
    assert min(spans) >= 0.85, min(spans)
    # Counted against the fallback's own mailbox, not the primary's.
    assert MailboxThrottle.objects.filter(mailbox=FALLBACK_SENDER).exists()


def test_the_fallback_waits_while_every_connection_to_its_mailbox_is_taken(
    primary_broken: Any, settings: Any
) -> None:
    settings.SMTP_MAX_CONNECTIONS = 1
    other = MailboxLease.objects.create(
        mailbox=FALLBACK_SENDER,
        holder="another-worker",
        expires_at=timezone.now() + timedelta(minutes=1),
    )
    mail.send_mail("Wait", "Body", SENDER, ["it@x.example"])
    report = outbox.outbox_deliver_due(budget_seconds=1)
    assert report["postponed"] == 1 and primary_broken.graph.requests == []
    assert Delivery.objects.get().state == DeliveryState.QUEUED

    other.delete()
    Delivery.objects.update(next_attempt_at=timezone.now())
    outbox.outbox_deliver_due()
    sent = Delivery.objects.get()
    assert (sent.state, sent.connection) == (DeliveryState.SENT, "fallback")
    assert not MailboxLease.objects.exists()  # the fallback's lease ended with the drain


def test_a_429_of_the_fallback_defers_its_mailbox_for_retry_after(
    primary_broken: Any, settings: Any
) -> None:
    settings.SMTP_MAX_MESSAGES_PER_MINUTE = 6000
    settings.SMTP_OUTBOX_RETRY_SECONDS = 60  # a backoff would be a minute: Retry-After rules
    primary_broken.graph.throttle_next = 1  # 429, Retry-After: 3
    for n in range(3):
        mail.send_mail(f"Throttled {n}", "Body", SENDER, [f"to{n}@x.example"])
    outbox.outbox_deliver_due(budget_seconds=1)
    # The throttled message waits (the primary's failure does not hold it): nothing is held.
    assert not Delivery.objects.filter(state=DeliveryState.HELD).exists()
    deliver_all()

    throttled, *later = primary_broken.graph.requests
    assert len(later) == 3
    # Nothing to that mailbox left before Retry-After, and the first went when it ended.
    assert all(request["at"] >= throttled["at"] + 3.0 for request in later)
    assert min(request["at"] for request in later) < throttled["at"] + 5.0
    assert {row.connection for row in Delivery.objects.all()} == {"fallback"}
