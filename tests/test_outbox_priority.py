"""One-time-link mail (a password reset, an invitation) is claimed before the rest, with a
real worker process against the sandbox's Exchange: a reset queued behind a backlog drained at
a per-mailbox limit goes next, not after the backlog; within a priority the oldest goes first,
and messages released together from a hold go in the order they were queued."""

from __future__ import annotations

import email
import email.policy
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from accounts import services as accounts
from smtp_settings import outbox
from smtp_settings.models import Delivery, DeliveryPriority, DeliveryState

from .test_outbox_backlog import queue_backlog, stop_delivering
from .test_outbox_worker import (
    wait_for,
    worker_process,  # noqa: F401  (the fixture)
)
from .test_sending import save

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RESET_SUBJECT = "choose a new password"


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


def arrived(sandbox: Any) -> list[str]:
    """Subjects in the order the server took them."""
    return [
        str(email.message_from_bytes(content, policy=email.policy.default)["Subject"])
        for _, content in list(sandbox.exchange.delivered)
    ]


def test_a_reset_queued_behind_500_messages_at_the_mailbox_limit_is_delivered_next(
    sandbox: Any,
    worker_process: Any,  # noqa: F811  (the fixture)
) -> None:
    user = User.objects.create_user("forgetful", "forgetful@sandbox.example", "a passphrase 71")
    save(sandbox.form_values())
    queue_backlog(500, prefix="Bulk")
    # Ten a second for the mailbox: the backlog would take 50 s, the reset's turn at the end.
    worker_process("one", SMTP_MAX_MESSAGES_PER_MINUTE="600")
    wait_for(lambda: len(sandbox.exchange.delivered) >= 5)
    try:
        before = len(arrived(sandbox))
        response = Client().post(reverse("password_reset"), {"email": user.email})
        assert response.status_code == 302
        queued_at = time.monotonic()
        assert Delivery.objects.get(email__subject__contains=RESET_SUBJECT).priority == (
            DeliveryPriority.ONE_TIME_LINK
        )
        wait_for(lambda: any(RESET_SUBJECT in s for s in arrived(sandbox)), timeout=30)
        waited = time.monotonic() - queued_at
        order = arrived(sandbox)
        position = next(n for n, subject in enumerate(order) if RESET_SUBJECT in subject)
        # At most the message the drain had taken as the reset was queued, and the one it was
        # waiting on its send slot for, went before it.
        assert position - before <= 2, order[before : position + 1]
        assert waited < 2, f"the reset arrived {waited:.1f} s after it was queued"
        assert Delivery.objects.filter(state__in=Delivery.PENDING).count() > 400
    finally:
        stop_delivering()


def test_messages_released_from_a_hold_go_one_time_links_first_then_in_queued_order(
    sandbox: Any,
    worker_process: Any,  # noqa: F811  (the fixture)
) -> None:
    save(sandbox.form_values())
    first = sorted(queue_backlog(15, prefix="Early"), key=lambda s: int(s.split()[1]))
    accounts.one_time_link_send(subject="Invitation", body="Choose it", to="new@sandbox.example")
    later = sorted(queue_backlog(15, prefix="Late"), key=lambda s: int(s.split()[1]))
    # Held, as a failed sign-in holds them; the release makes them all due at one instant.
    Delivery.objects.update(state=DeliveryState.HELD)
    assert outbox.outbox_release_held() == 31
    assert len(set(Delivery.objects.values_list("next_attempt_at", flat=True))) == 1
    worker_process("one", SMTP_MAX_MESSAGES_PER_MINUTE="6000")
    wait_for(lambda: len(sandbox.exchange.delivered) == 31)
    assert arrived(sandbox) == ["Invitation", *first, *later]
