"""The sent mark: a message's writes land all or none, on PostgreSQL as one statement."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.db import IntegrityError
from django.utils import timezone
from post_office.models import STATUS, Email, Log

from smtp_settings.models import Delivery, DeliveryState
from smtp_settings.outbox import writes


def _sent_mark(pk: int, log_for: int) -> list[writes.Statement]:
    return [
        writes.update_row(Delivery, pk, state=DeliveryState.SENT, sent_at=timezone.now()),
        writes.update_row(Email, pk, status=STATUS.sent),
        writes.insert_row(Log, email_id=log_for, status=STATUS.sent, message="250 2.0.0 OK"),
    ]


def test_a_mark_is_written_whole(transactional_db: Any, settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    mail.send_mail("Whole", "Body", "a@contoso.example", ["it@contoso.example"])
    pk = Delivery.objects.get().pk
    writes.run_atomically(_sent_mark(pk, pk))
    assert Delivery.objects.get().state == DeliveryState.SENT
    assert Email.objects.get().status == STATUS.sent
    assert Log.objects.get().email_id == pk


def test_a_mark_that_fails_in_its_last_write_changes_nothing(
    transactional_db: Any, settings: Any
) -> None:
    """Not a sent message without its Log row, nor a Delivery sent while post_office's row
    says queued: the Log row's message does not exist, so none of the three is written."""
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    mail.send_mail("Half", "Body", "a@contoso.example", ["it@contoso.example"])
    pk = Delivery.objects.get().pk
    with pytest.raises(IntegrityError):
        writes.run_atomically(_sent_mark(pk, pk + 1000))
    assert Delivery.objects.get().state == DeliveryState.QUEUED
    assert Email.objects.get().status == STATUS.queued
    assert not Log.objects.exists()
