"""The drain's two savings: post_office's own marks of a sent message (``Email.status`` and
a Log row) written for several messages at once, and the next message written while the
server has the one before. What they must not change: every message's record, whoever
writes it, and every message's failure its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from post_office.models import STATUS, Email, Log

from smtp_settings import outbox
from smtp_settings.mail import transport
from smtp_settings.mail.backend import EmailBackend
from smtp_settings.models import Delivery, DeliveryState
from smtp_settings.outbox import sent_marks

from .sandbox.world import SENDER
from .test_sending import save

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


def _sent_logs(pk: int) -> list[tuple[str, Any]]:
    return list(Log.objects.filter(email_id=pk, status=STATUS.sent).values_list("message", "date"))


def test_a_drain_leaves_post_offices_status_and_one_log_row_for_each_message_sent(
    sandbox: Any,
) -> None:
    save(sandbox.form_values())
    for n in range(3):
        mail.send_mail(f"Marked {n}", "Body", SENDER, [f"it{n}@x.example"])

    assert outbox.outbox_deliver_due()["sent"] == 3

    for delivery in Delivery.objects.filter(email__subject__startswith="Marked"):
        assert delivery.state == DeliveryState.SENT
        assert Email.objects.get(pk=delivery.pk).status == STATUS.sent
        # The server's answer, at the time the row says it was sent.
        assert _sent_logs(delivery.pk) == [(delivery.last_answer, delivery.sent_at)]
        assert delivery.last_answer.startswith("250")


def test_marks_a_killed_drain_left_unwritten_are_written_by_the_next_drain_once(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(sandbox.form_values())
    mail.send_mail("Killed after", "Body", SENDER, ["it@x.example"])
    mail.send_mail("Just sent", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    # What a worker killed between its sent mark and post_office's leaves: the message is
    # sent (its Delivery row says so), post_office's status and Log row are not written.
    Email.objects.update(status=STATUS.queued)
    Log.objects.all().delete()
    killed = Delivery.objects.get(email__subject="Killed after")
    Delivery.objects.filter(pk=killed.pk).update(sent_at=timezone.now() - timedelta(minutes=1))
    killed.refresh_from_db()
    # As in a worker started after the kill: its first drain looks.
    monkeypatch.setattr(sent_marks, "_caught_up_at", -sent_marks._CATCH_UP_EVERY_SECONDS)

    outbox.outbox_deliver_due()

    assert Email.objects.get(pk=killed.pk).status == STATUS.sent
    assert _sent_logs(killed.pk) == [(killed.last_answer, killed.sent_at)]
    # Sent a moment ago: a live drain would still be about to write it; left to that drain.
    just_sent = Delivery.objects.get(email__subject="Just sent")
    assert Email.objects.get(pk=just_sent.pk).status == STATUS.queued
    assert len(sandbox.exchange.delivered) == 2  # nothing was sent again

    # Written once, whoever comes again.
    assert sent_marks.sent_marks_catch_up() == 0
    marks = sent_marks.SentMarks()
    marks.add(killed.pk, killed.last_answer, killed.sent_at)
    marks.flush()
    assert len(_sent_logs(killed.pk)) == 1

    # The drains of one process look at most every half minute (drains start often).
    Delivery.objects.filter(pk=just_sent.pk).update(sent_at=timezone.now() - timedelta(minutes=1))
    outbox.outbox_deliver_due()
    assert Email.objects.get(pk=just_sent.pk).status == STATUS.queued
    monkeypatch.setattr(sent_marks, "_caught_up_at", -sent_marks._CATCH_UP_EVERY_SECONDS)
    outbox.outbox_deliver_due()
    assert Email.objects.get(pk=just_sent.pk).status == STATUS.sent


def test_the_next_message_is_written_while_the_server_has_the_one_before(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(sandbox.form_values())
    for n in range(3):
        mail.send_mail(f"Ahead {n}", "Body", SENDER, [f"it{n}@x.example"])
    events: list[str] = []
    written, sent = EmailBackend.outgoing, transport.SmtpConnection.send

    def outgoing(self: EmailBackend, message: Any) -> Any:
        events.append(f"written {message.subject}")
        return written(self, message)

    def send(self: transport.SmtpConnection, **kwargs: Any) -> str:
        answer = sent(self, **kwargs)
        events.append("answered")
        return answer

    monkeypatch.setattr(EmailBackend, "outgoing", outgoing)
    monkeypatch.setattr(transport.SmtpConnection, "send", send)

    assert outbox.outbox_deliver_due()["sent"] == 3

    # Each message after the first is written before the answer to the one before is read.
    assert events == [
        *("written Ahead 0", "written Ahead 1", "answered"),
        *("written Ahead 2", "answered"),
        "answered",
    ]


@pytest.mark.parametrize("extensions", ["chunking", "pipelining only", "neither"])
def test_a_message_that_cannot_be_written_fails_at_its_own_turn_only(
    sandbox: Any, extensions: str
) -> None:
    # Written ahead, while the message before it was with the server; the way the server
    # takes commands does not change what each message comes to.
    sandbox.exchange.handler.chunking = extensions == "chunking"
    sandbox.exchange.handler.pipelining = extensions != "neither"
    save(sandbox.form_values())
    mail.send_mail("Before", "Body", SENDER, ["it@elsewhere.example"])
    mail.send_mail("Unwritable", "Body", SENDER, ["a@" + "\u00e4" * 62 + ".example"])
    mail.send_mail("After", "Body", SENDER, ["it@elsewhere.example"])

    report = outbox.outbox_deliver_due()

    assert (report["sent"], report["failed"]) == (2, 1)
    failed = Delivery.objects.get(email__subject="Unwritable")
    assert (failed.state, failed.diagnosis) == (DeliveryState.FAILED, "unwritable")
    assert Email.objects.get(pk=failed.pk).status == STATUS.failed
    subjects = [message["Subject"] for message in _delivered(sandbox)]
    assert subjects == ["Before", "After"]


def _delivered(sandbox: Any) -> list[Any]:
    import email

    return [email.message_from_bytes(content) for _, content in sandbox.exchange.delivered]


def test_marks_that_cannot_be_written_stop_nothing_and_are_written_later(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from smtp_settings.models import MailboxLease

    save(sandbox.form_values())
    for n in range(3):
        mail.send_mail(f"Unmarked {n}", "Body", SENDER, [f"it{n}@x.example"])
    written = sent_marks._write

    def refused(marks: list[Any]) -> int:
        raise OperationalError("database is locked")

    monkeypatch.setattr(sent_marks, "_write", refused)

    assert outbox.outbox_deliver_due()["sent"] == 3

    # The messages are sent and the drain let go of its connection lease as ever.
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
    assert not MailboxLease.objects.exists()
    assert not Email.objects.filter(status=STATUS.sent).exists()
    monkeypatch.setattr(sent_marks, "_write", written)
    Delivery.objects.update(sent_at=timezone.now() - timedelta(minutes=1))
    assert sent_marks.sent_marks_catch_up() == 3
    assert Email.objects.filter(status=STATUS.sent).count() == 3
