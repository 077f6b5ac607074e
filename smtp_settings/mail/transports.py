"""The transport seam: what the backend (and so the outbox) needs of a way to send.

SMTP (``smtp_sessions.SmtpTransport``) and Microsoft Graph (``graph.GraphTransport``)
implement it. Every failure they raise is a ``DeliveryError`` (mail/errors.py): the
outbox, Validate's sending steps and the health check read that one type, and never a
transport's own exceptions. A third transport is one module implementing this, one line
in ``transport_for``, and its choice in the settings' ``transport`` values.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message
from typing import Protocol

from smtp_settings.mail import endpoint
from smtp_settings.mail.graph import GraphTransport
from smtp_settings.mail.smtp_sessions import SmtpTransport


class Transport(Protocol):
    """One configuration's way out. ``mailbox`` is the mailbox a message is sent as."""

    def has_session(self, mailbox: str) -> bool:
        """Whether ``mailbox`` is ready to send without signing in first."""
        ...

    def open(self, mailbox: str) -> None:
        """Sign in for ``mailbox`` now (connect, authenticate, or get a token)."""
        ...

    def written(self, message: Message, recipients: list[str]) -> bytes:
        """``message`` as this transport carries it; a message it cannot carry is a
        ``MessageRefused`` here already. The outbox writes a message ahead of its turn."""
        ...

    def send(
        self,
        *,
        mailbox: str,
        recipients: list[str],
        message: Message | bytes,
        meanwhile: Callable[[], None] | None = None,
    ) -> str:
        """Deliver ``message`` (Bcc recipients among ``recipients``), or what ``written``
        made of it; the server's answer. ``meanwhile``, if the transport can, runs once
        while the server works on the message (between writing it and reading the answer):
        the outbox writes its next message there. It must not raise; a transport that cannot
        wait in between never calls it."""
        ...

    def close(self, mailbox: str) -> None:
        """Forget ``mailbox``'s session: the next message signs in anew."""
        ...

    def close_all(self) -> None: ...


def transport_for(mail: endpoint.MailSettings, *, timeout: float) -> Transport:
    """The transport these settings choose."""
    if mail.transport == endpoint.GRAPH:
        return GraphTransport(mail, timeout=timeout)
    return SmtpTransport(mail, timeout=timeout)
