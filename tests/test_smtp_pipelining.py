"""Grouped SMTP commands (PIPELINING, CHUNKING), as Exchange Online offers them, against the
sandbox's Exchange stand-in with each extension on and off: the same message, the same
answers and refusals, in fewer round trips."""

from __future__ import annotations

import email
import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

import pytest

from smtp_settings.mail.transport import (
    Credentials,
    SmtpConnection,
    SmtpEndpoint,
    SmtpFailure,
    wire_bytes,
)

from .sandbox.exchange import SEND_AS_ENVELOPE, SEND_AS_HEADER
from .sandbox.world import SENDER
from .test_transport_and_oauth import token_for

# Offered by the server -> writes one message takes (MAIL, 2 RCPT, DATA and the message).
WAYS = {
    "pipelining and chunking": ((True, True), 1),
    "pipelining only": ((True, False), 2),
    "neither": ((False, False), 5),
}


@contextmanager
def session(sandbox: Any, pipelining: bool, chunking: bool) -> Iterator[SmtpConnection]:
    sandbox.exchange.handler.pipelining = pipelining
    sandbox.exchange.handler.chunking = chunking
    connection = SmtpConnection(
        SmtpEndpoint("127.0.0.1", sandbox.exchange.port, use_tls=True, timeout=5)
    )
    try:
        connection.connect()
        connection.secure()
        connection.authenticate(Credentials("oauth2", SENDER, token_for(sandbox).access_token))
        yield connection
    finally:
        connection.close()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What the client writes to the server, write by write (the server is real)."""
    sent: list[bytes] = []
    real_send = smtplib.SMTP.send

    def send(self: smtplib.SMTP, data: Any) -> None:
        sent.append(data if isinstance(data, bytes) else data.encode("ascii"))
        real_send(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", send)
    return sent


def message(sender: str = SENDER) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "a@elsewhere.example", "Grouped"
    msg.set_content(".starts with a dot\n.\nand a lone dot line\n")
    return msg


def missed_by_a_send(connection: SmtpConnection, recipients: list[str]) -> str:
    """The line a message sent to some of ``recipients`` adds to the server's answer."""
    answer = connection.send(sender=SENDER, recipients=recipients, message=message())
    first, missed = answer.split("\n")
    assert first.startswith("250 2.0.0 OK")
    return missed


@pytest.mark.parametrize("way", WAYS)
def test_each_way_delivers_the_same_bytes_in_fewer_writes(
    sandbox: Any, writes: list[bytes], way: str
) -> None:
    (pipelining, chunking), expected_writes = WAYS[way]
    recipients = ["a@elsewhere.example", "b@elsewhere.example"]
    with session(sandbox, pipelining, chunking) as connection:
        writes.clear()
        answer = connection.send(sender=SENDER, recipients=recipients, message=message())
        assert len(writes) == expected_writes
        # The session goes on after it: a second message on the same connection.
        connection.send(sender=SENDER, recipients=recipients[:1], message=message())
    assert answer.startswith("250 2.0.0 OK")
    (envelope, content), _ = sandbox.exchange.delivered[-2:]
    assert envelope.mail_from == SENDER and envelope.rcpt_tos == recipients
    assert content == wire_bytes(message())  # dots and line ends as written
    assert email.message_from_bytes(content).get_payload().startswith(".starts with a dot")


@pytest.mark.parametrize("way", WAYS)
def test_refusals_read_as_they_did_command_by_command(sandbox: Any, way: str) -> None:
    (pipelining, chunking), _ = WAYS[way]
    handler = sandbox.exchange.handler
    handler.recipient_answers["refused@elsewhere.example"] = (
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound"
    )
    with session(sandbox, pipelining, chunking) as connection:
        with pytest.raises(SmtpFailure) as not_ours:
            connection.send(
                sender="someone.else@contoso.example",
                recipients=["a@elsewhere.example"],
                message=message("someone.else@contoso.example"),
            )
        assert (not_ours.value.kind, not_ours.value.answer) == ("mail_refused", SEND_AS_ENVELOPE)
        with pytest.raises(SmtpFailure) as nobody:
            connection.send(
                sender=SENDER, recipients=["refused@elsewhere.example"], message=message()
            )
        assert nobody.value.kind == "rcpt_refused"
        assert nobody.value.answer.startswith("550 5.1.10")
        # Refused after the message (the From header is not the mailbox's).
        with pytest.raises(SmtpFailure) as header:
            connection.send(
                sender=SENDER,
                recipients=["a@elsewhere.example"],
                message=message("someone.else@contoso.example"),
            )
        assert header.value.kind == "data_refused"
        assert header.value.answer.startswith(SEND_AS_HEADER.split(";")[0])
        # One refused recipient of two: the other gets it, the answer says who did not;
        # then the session still sends.
        missed = missed_by_a_send(connection, ["refused@elsewhere.example", "a@elsewhere.example"])
        assert (
            missed
            == "Not sent to refused@elsewhere.example: 550 5.1.10 RESOLVER.ADR.RecipientNotFound"
        )
        connection.send(sender=SENDER, recipients=["b@elsewhere.example"], message=message())
    assert [envelope.rcpt_tos for envelope, _ in handler.delivered] == [
        ["a@elsewhere.example"],
        ["b@elsewhere.example"],
    ]


def test_the_sender_check_is_one_write_where_pipelining_is_offered(
    sandbox: Any, writes: list[bytes]
) -> None:
    with session(sandbox, True, True) as connection:
        writes.clear()
        mail, rcpt = connection.check_sender(SENDER, "a@elsewhere.example")
        assert len(writes) == 1 and writes[0].count(b"\r\n") == 3  # MAIL, RCPT, RSET
        with pytest.raises(SmtpFailure) as refused:
            connection.check_sender("someone.else@contoso.example", "a@elsewhere.example")
        connection.send(sender=SENDER, recipients=["a@elsewhere.example"], message=message())
    assert mail.startswith("250") and rcpt.startswith("250")
    assert (refused.value.stage, refused.value.kind) == ("sender", "mail_refused")
    assert len(sandbox.exchange.handler.delivered) == 1


def test_many_recipients_go_in_groups_the_server_can_answer_while_it_reads(
    sandbox: Any, writes: list[bytes]
) -> None:
    recipients = [f"r{n}@elsewhere.example" for n in range(150)]
    with session(sandbox, True, True) as connection:
        writes.clear()
        connection.send(sender=SENDER, recipients=recipients, message=message())
        sent = list(writes)
    # MAIL and 99 RCPT, then 51 RCPT and BDAT with the message.
    assert [chunk.count(b"\r\nrcpt TO:") + chunk.startswith(b"rcpt") for chunk in sent] == [99, 51]
    assert sent[0].startswith(b"mail FROM:") and b"bdat " in sent[1]
    envelope, content = sandbox.exchange.handler.delivered[-1]
    assert envelope.rcpt_tos == recipients and content == wire_bytes(message())


def test_a_recipient_smtp_cannot_carry_is_named_in_the_answer(sandbox: Any) -> None:
    with session(sandbox, True, True) as connection:
        missed = missed_by_a_send(connection, ["a@elsewhere.example", "jörg@elsewhere.example"])
    assert "jörg@elsewhere.example cannot be sent to" in missed
    envelope, _ = sandbox.exchange.handler.delivered[-1]
    assert envelope.rcpt_tos == ["a@elsewhere.example"]
