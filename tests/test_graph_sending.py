"""Sending through Microsoft Graph (issue 20): the backend's Graph transport against the
sandbox's Graph stand-in, with real tokens from the Entra stand-in, over HTTPS."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from smtp_settings import outbox
from smtp_settings.mail import oauth
from smtp_settings.mail.backend import EmailBackend
from smtp_settings.mail.endpoint import GRAPH, MailSettings
from smtp_settings.mail.errors import CredentialFailure, MessageRefused, TemporaryFailure
from smtp_settings.mail.graph import graph_scope
from smtp_settings.mail.transport import wire_bytes
from smtp_settings.models import Delivery, DeliveryState, SmtpSettings

from .sandbox.directory import GRAPH_RESOURCE
from .sandbox.world import CLIENT_SECRET, SENDER

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    # pytest-django swaps in Django's test backend; these tests use the console's own.
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


@pytest.fixture
def graph(sandbox: Any, settings: Any) -> Any:
    """The sandbox with its app holding Graph's Mail.Send, its Graph host allowed."""
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    sandbox.app.roles[GRAPH_RESOURCE] = ["Mail.Send"]
    return sandbox


def graph_values(sandbox: Any, **changes: Any) -> dict[str, Any]:
    return {
        **sandbox.form_values(),
        "transport": GRAPH,
        "graph_host": sandbox.graph.host,
        "port": 587,
        **changes,
    }


def graph_settings(sandbox: Any, **changes: Any) -> MailSettings:
    values = graph_values(sandbox, **changes)
    return MailSettings.from_values(values, secret=values["client_secret"])


def save_graph(sandbox: Any, **changes: Any) -> SmtpSettings:
    values = graph_values(sandbox, **changes)
    row = SmtpSettings.load()
    for name in ("transport", "graph_host", "sender_email", "auth_type", "client_id"):
        setattr(row, name, values[name])
    row.token_endpoint, row.scopes = values["token_endpoint"], values["scopes"]
    row.smtp_server, row.client_secret = "", CLIENT_SECRET
    row.save()
    return row


def test_a_message_reaches_graph_exactly_as_django_built_it_attachments_and_bcc_included(
    graph: Any,
) -> None:
    message = mail.EmailMultiAlternatives(
        "Report for März",
        "Plain body\nFrom the start of a line\n",
        SENDER,
        ["it@x.example"],
        cc=["cc@x.example"],
        bcc=["hidden@x.example"],
        reply_to=["desk@sandbox.example"],
        headers={
            "Message-ID": "<fixed.1@sandbox.example>",
            "Date": "Fri, 04 Dec 2026 09:00:00 -0000",
        },
    )
    message.attach_alternative("<p>HTML body</p>", "text/html")
    message.attach("data.bin", bytes(range(256)) * 64, "application/octet-stream")
    message.attach("notes.txt", "ünïcödé text\n", "text/plain")
    backend = EmailBackend(mail_settings=graph_settings(graph))
    assert backend.send_messages([message]) == 1

    envelope, content = graph.exchange.delivered[-1]
    assert sorted(envelope.rcpt_tos) == ["cc@x.example", "hidden@x.example", "it@x.example"]
    assert b"Bcc" not in content and b"hidden@x.example" not in content
    # What Django builds (no Bcc header), byte for byte but for the multipart boundaries,
    # which Python draws anew each time a message is built.
    assert comparable(content) == comparable(wire_bytes(message.message()))
    assert content.count(b"Content-Disposition: attachment") == 2
    assert graph.graph.requests[-1]["content_type"] == "text/plain"


def comparable(content: bytes) -> bytes:
    """Line ends as LF and each multipart boundary named by its order of appearance."""
    content = content.replace(b"\r\n", b"\n")
    for n, boundary in enumerate(dict.fromkeys(re.findall(rb'boundary="([^"]+)"', content))):
        content = content.replace(boundary, b"BOUNDARY-%d" % n)
    return content


def test_a_hundred_messages_take_one_token(graph: Any) -> None:
    before = graph.entra.token_requests
    backend = EmailBackend(mail_settings=graph_settings(graph))
    messages = [
        mail.EmailMessage(f"n{n}", "Body", SENDER, [f"to{n}@x.example"]) for n in range(100)
    ]
    assert backend.send_messages(messages) == 100
    assert graph.entra.token_requests - before == 1
    assert len(graph.exchange.delivered) == 100


def test_the_token_is_graphs_per_cloud() -> None:
    def scope(endpoint: str, host: str = "") -> str:
        values = {"smtp_server": "", "port": 587, "use_ssl_tls": True, "sender_email": SENDER}
        return graph_scope(
            MailSettings.from_values({**values, "token_endpoint": endpoint, "graph_host": host})
        )

    tenant = "3b1f5a20-7c41-4e2a-9d55-5a9d1e000001"
    assert scope(f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token") == (
        "https://graph.microsoft.com/.default"
    )
    assert scope(f"https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token") == (
        "https://graph.microsoft.us/.default"
    )
    assert scope(f"https://login.partner.microsoftonline.cn/{tenant}/oauth2/v2.0/token") == (
        "https://microsoftgraph.chinacloudapi.cn/.default"
    )


def test_the_token_goes_to_no_graph_host_that_is_not_allowed(graph: Any, settings: Any) -> None:
    settings.SMTP_GRAPH_HOSTS = []
    backend = EmailBackend(mail_settings=graph_settings(graph))
    message = mail.EmailMessage("Hi", "Body", SENDER, ["it@x.example"])
    with pytest.raises(CredentialFailure) as caught:
        backend.send_messages([message])
    assert caught.value.kind == "graph_host_not_allowed"
    assert "SMTP_GRAPH_HOSTS" in caught.value.message
    assert graph.graph.requests == []


def test_a_message_over_four_megabytes_fails_alone_with_the_reason(graph: Any) -> None:
    backend = EmailBackend(mail_settings=graph_settings(graph))
    big = mail.EmailMessage("Big", "Body", SENDER, ["it@x.example"])
    big.attach("big.bin", b"\x00" * (3 * 1024 * 1024 + 200_000), "application/octet-stream")
    with pytest.raises(MessageRefused) as caught:
        backend.send_messages([big])
    assert caught.value.kind == "graph_too_large" and "4 MB" in caught.value.message
    assert graph.graph.requests == []  # refused before anything went
    small = mail.EmailMessage("Small", "Body", SENDER, ["it@x.example"])
    assert backend.send_messages([small]) == 1


def test_graphs_answers_become_the_outboxs_failures(graph: Any) -> None:
    message = mail.EmailMessage("Hi", "Body", SENDER, ["it@x.example"])
    graph.graph.throttle_next = 1
    with pytest.raises(TemporaryFailure) as throttled:
        EmailBackend(mail_settings=graph_settings(graph)).send_messages([message])
    assert throttled.value.retry_after == 3.0 and throttled.value.answer.startswith("429")
    graph.graph.busy_next = 1
    with pytest.raises(TemporaryFailure) as busy:
        EmailBackend(mail_settings=graph_settings(graph)).send_messages([message])
    assert busy.value.kind == "graph_busy" and busy.value.retry_after is None
    unknown = mail.EmailMessage("Hi", "Body", "nobody@sandbox.example", ["it@x.example"])
    loose = graph_settings(graph, use_sender_email=False)
    with pytest.raises(CredentialFailure) as invalid_user:
        EmailBackend(mail_settings=loose).send_messages([unknown])
    assert invalid_user.value.kind == "graph_invalid_user"


def test_a_429_with_retry_after_3_defers_the_message_that_long_not_longer(
    graph: Any, settings: Any, admin_client: Any
) -> None:
    settings.SMTP_OUTBOX_RETRY_SECONDS = 60  # backoff would be a minute: Retry-After rules
    save_graph(graph)
    graph.graph.throttle_next = 1
    mail.send_mail("Throttled", "Body", SENDER, ["it@x.example"])
    before = timezone.now()
    outbox.outbox_deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.DEFERRED
    wait = delivery.next_attempt_at - before
    assert timedelta(seconds=3) <= wait < timedelta(seconds=4)
    assert delivery.last_answer.startswith("429 ApplicationThrottled")
    # The message's page says when it is tried next.
    page = admin_client.get(f"/administration/smtp/outbox/{delivery.email_id}/").content.decode()
    assert f'id="message-next-try"><time datetime="{delivery.next_attempt_at.isoformat()}' in page
    Delivery.objects.update(next_attempt_at=timezone.now())
    outbox.outbox_deliver_due()
    assert Delivery.objects.get().state == DeliveryState.SENT
    assert len(graph.exchange.delivered) == 1


def test_a_429_defers_every_message_of_that_mailbox_until_retry_after_ends(
    graph: Any, settings: Any
) -> None:
    """The mailbox's send slots wait for Retry-After too: the next message to it leaves no
    earlier than 3 s after the 429, and when they end (its slot is then, not a backoff)."""
    settings.SMTP_MAX_MESSAGES_PER_MINUTE = 6000  # without Retry-After, 0.01 s apart
    settings.SMTP_OUTBOX_RETRY_SECONDS = 60
    save_graph(graph)
    graph.graph.throttle_next = 1
    for n in range(3):
        mail.send_mail(f"Burst {n}", "Body", SENDER, [f"to{n}@x.example"])
    deadline = time.monotonic() + 30
    while Delivery.objects.exclude(state=DeliveryState.SENT).exists():
        assert time.monotonic() < deadline
        outbox.outbox_deliver_due()
        time.sleep(0.05)

    throttled, *later = graph.graph.requests
    assert len(later) == 3 and len(graph.exchange.delivered) == 3
    assert all(request["at"] >= throttled["at"] + 3.0 for request in later)
    assert min(request["at"] for request in later) < throttled["at"] + 5.0


def test_the_health_check_reads_a_graph_token_for_graph_settings(graph: Any) -> None:
    from smtp_settings.monitoring.health_check import mail_health_check_run

    save_graph(graph)
    check = mail_health_check_run()
    assert check is not None and check.ok, check.detail if check else None
    assert "Microsoft Graph with the Mail.Send role" in check.detail
    graph.app.roles[GRAPH_RESOURCE] = []
    # No Mail.Send in the token may be RBAC for Applications (never in the token): not a
    # failure of the health check; a refused send holds and is told.
    rbac = mail_health_check_run()
    assert rbac is not None and rbac.ok and "RBAC for Applications" in rbac.detail
    graph.app.secrets[CLIENT_SECRET] = True  # Entra refuses the secret: that fails it
    oauth.forget_applications()
    failed = mail_health_check_run()
    assert failed is not None and not failed.ok and failed.step == "token"


def test_held_mail_leaves_at_the_retry_after_mail_send_is_granted(
    graph: Any, admin_user: Any
) -> None:
    """Mail.Send withdrawn: the outbox's token lacks it and Graph refuses (403), mail is
    held. Granted again in Entra ID: the Retry sends with a new token, not the held one's
    (it would carry the old roles for up to an hour)."""
    save_graph(graph)
    graph.graph.permissions(mail_send=False, smtp_send_as=None)
    mail.send_mail("Held first", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    held = Delivery.objects.get(email__subject="Held first")
    assert held.state == DeliveryState.HELD
    graph.graph.permissions(mail_send=True, smtp_send_as=None)
    outbox.outbox_retry(email_id=held.pk, user=admin_user)
    outbox.outbox_deliver_due()
    assert Delivery.objects.get(email__subject="Held first").state == DeliveryState.SENT
