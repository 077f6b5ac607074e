"""SMTP commands sent as a group where the server offers PIPELINING (RFC 2920), as Exchange
Online does: MAIL FROM, every RCPT TO and the last command (DATA, or RSET after a sender
check) go out in one write and their answers are read in order. Where it offers CHUNKING
(RFC 3030) too, as Exchange does, the last command is ``BDAT <size> LAST`` with the
message itself: one round trip a message, where command by command took three plus one
per recipient. Each answer still decides what it decided alone
(``transport.SmtpConnection`` reads them as it read them one by one).
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable

Reply = tuple[int, bytes]
# The caller's work done while the server works on a message (``transports.Transport.send``).
Meanwhile = Callable[[], None] | None

# Commands per write: the server answers while it reads, and a group so large that its
# answers filled both sides' buffers would stall the two of them (Exchange takes at most
# 500 recipients a message; a hundred answers are a few kilobytes).
_GROUP = 100
_LEADING_DOT = re.compile(rb"(?m)^\.")


def offered(smtp: smtplib.SMTP) -> bool:
    return smtp.has_extn("pipelining")


def chunking_offered(smtp: smtplib.SMTP) -> bool:
    return smtp.has_extn("pipelining") and smtp.has_extn("chunking")


def last_chunk(payload: bytes) -> tuple[str, bytes]:
    """The command and the bytes that send ``payload`` as one last chunk (BDAT: exact size,
    no dot-stuffing), ending with a line end as DATA's message does."""
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return f"bdat {len(payload)} last", payload


def envelope(
    smtp: smtplib.SMTP,
    sender: str,
    recipients: list[str],
    last: str,
    then: bytes = b"",
    meanwhile: Meanwhile = None,
) -> tuple[Reply, list[Reply], Reply]:
    """MAIL FROM, RCPT TO for each recipient, then ``last`` ("data", "rset" or a BDAT with
    its chunk ``then``), grouped; the answers to MAIL, to each RCPT and to ``last``.
    ``meanwhile`` runs once the last group is written, before its answers are read.

    A DATA the server accepted although MAIL or every RCPT was refused (RFC 2920 asks
    servers not to) is ended at once with a lone dot: nothing of the message is sent. A BDAT
    then is answered with a refusal and its chunk dropped (RFC 3030).
    """
    commands = [
        f"mail FROM:{smtplib.quoteaddr(sender)}",
        *(f"rcpt TO:{smtplib.quoteaddr(recipient)}" for recipient in recipients),
        last,
    ]
    replies: list[Reply] = []
    for start in range(0, len(commands), _GROUP):
        group = commands[start : start + _GROUP]
        if any("\r" in command or "\n" in command for command in group):
            # What smtplib's putcmd refuses too: a line break would start another command.
            raise ValueError("A line break in an SMTP command is not allowed.")
        lines = "".join(f"{command}\r\n" for command in group).encode("ascii")
        written_all = start + _GROUP >= len(commands)
        smtp.send(lines + then if written_all else lines)
        if written_all and meanwhile is not None:
            meanwhile()
        replies += [smtp.getreply() for _ in group]
    mail, *rcpts, final = replies
    nothing_to_send = mail[0] != 250 or not any(code in (250, 251) for code, _ in rcpts)
    if last == "data" and final[0] == 354 and nothing_to_send:
        smtp.send(b".\r\n")
        smtp.getreply()
    return mail, rcpts, final


def message(smtp: smtplib.SMTP, payload: bytes, meanwhile: Meanwhile = None) -> Reply:
    """The message after DATA's 354, dot-stuffed and ended as smtplib's ``data`` ends it;
    the server's answer to it."""
    stuffed = _LEADING_DOT.sub(b"..", payload)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    smtp.send(stuffed + b".\r\n")
    if meanwhile is not None:
        meanwhile()
    return smtp.getreply()


def mail_transaction(
    smtp: smtplib.SMTP,
    sender: str,
    recipients: list[str],
    payload: bytes,
    meanwhile: Meanwhile = None,
) -> tuple[Reply, list[Reply], Callable[[], Reply]]:
    """MAIL's answer, each RCPT's, and what sends the message once they allow it (its call
    returns the server's final answer): grouped where the server offers it, one round trip
    with CHUNKING; else command by command, as smtplib sends them. ``meanwhile`` runs while
    the server has the message (grouped ways only: smtplib writes and reads in one call)."""
    if chunking_offered(smtp):
        bdat, chunk = last_chunk(payload)
        mail, rcpts, answer = envelope(smtp, sender, recipients, bdat, chunk, meanwhile)
        return mail, rcpts, lambda: answer  # BDAT's answer is the message's
    if offered(smtp):
        mail, rcpts, data = envelope(smtp, sender, recipients, "data")
        if data[0] != 354:
            return mail, rcpts, lambda: _refused_data(data)
        return mail, rcpts, lambda: message(smtp, payload, meanwhile)
    mail = smtp.mail(sender)
    rcpts = [smtp.rcpt(recipient) for recipient in recipients] if mail[0] == 250 else []
    return mail, rcpts, lambda: smtp.data(payload)


def sender_check(smtp: smtplib.SMTP, sender: str, recipient: str) -> tuple[Reply, Reply]:
    """MAIL's and RCPT's answers, then RSET: grouped where the server offers it, else one by
    one, with no RCPT after a refused MAIL (its answer is then a stand-in, never judged)."""
    if offered(smtp):
        mail, (rcpt,), _ = envelope(smtp, sender, [recipient], "rset")
        return mail, rcpt
    mail = smtp.mail(sender)
    if mail[0] != 250:
        return mail, (0, b"")
    rcpt = smtp.rcpt(recipient)
    smtp.rset()
    return mail, rcpt


def _refused_data(data: Reply) -> Reply:
    # What smtplib's data() raises for an answer other than 354.
    raise smtplib.SMTPDataError(*data)
