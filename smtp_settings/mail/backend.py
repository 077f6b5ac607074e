"""A Django e-mail backend that delivers through the transport its settings choose.

It keeps Django's contract: ``open()`` says whether it opened the backend, and
``send_messages()`` closes only what it opened, returns how many messages went,
and honours ``fail_silently``. It writes the message as Django builds it and decides the
mailbox it is sent as (with Use sender email off, each From address is its own mailbox);
the transport (SMTP or Microsoft Graph, ``transports.transport_for``) signs in per
mailbox and carries it. Failures are ``DeliveryError`` subclasses, whichever transport.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message
from email.utils import make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.encoding import punycode

from smtp_settings.mail import endpoint
from smtp_settings.mail.errors import DeliveryError, MessageRefused
from smtp_settings.mail.transport import ehlo_name
from smtp_settings.mail.transports import Transport, transport_for


@dataclass(frozen=True)
class Outgoing:
    mailbox: str
    recipients: list[str]
    # As the transport carries it (``Transport.written``).
    payload: bytes


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def message_id_for(address: str) -> str:
    """A new Message-ID on ``address``'s domain (in its xn-- form): Django's default would
    name this host through a DNS lookup."""
    try:
        domain = punycode(_domain(parseaddr(address)[1] or address))
    except UnicodeError:
        domain = ""
    return make_msgid(domain=domain or ehlo_name())


class EmailBackend(BaseEmailBackend):
    def __init__(
        self,
        fail_silently: bool = False,
        *,
        mail_settings: endpoint.MailSettings | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self._given = mail_settings
        self._mail: endpoint.MailSettings | None = None
        self.timeout = float(timeout or settings.SMTP_NETWORK_TIMEOUT_SECONDS)
        self._transport: Transport | None = None
        self._open = False
        self._lock = threading.RLock()

    # -- the settings and where a message goes -------------------------------------

    @property
    def mail(self) -> endpoint.MailSettings:
        """The settings given, or loaded once per open/close by a subclass that reads saved
        ones (a Save then takes effect at the next open)."""
        if self._mail is None:
            self._mail = self._given or self.load_settings()
        return self._mail

    def load_settings(self) -> endpoint.MailSettings:
        """Where settings come from when none were given: the engine knows no database, so
        only a subclass above it (``smtp_settings.sending``) can say."""
        raise ImproperlyConfigured(
            "EmailBackend sends with the settings it is given (mail_settings=...); for the "
            "saved ones use smtp_settings.sending.SavedSettingsEmailBackend."
        )

    def mailbox_for(self, message: EmailMessage) -> str:
        """The mailbox a message is sent as: its envelope sender, and the XOAUTH2 user."""
        mail = self.mail
        if mail.use_sender_email:
            return mail.sender_email
        address = parseaddr(message.from_email)[1]
        if _domain(address) != _domain(mail.sender_email):
            raise MessageRefused(
                f"The From address {address or '(none)'} is outside the organisation "
                f"({_domain(mail.sender_email)}); with Use sender email off, the console sends "
                "only from mailboxes of the Sender Email's domain.",
                stage="sender",
                kind="outside_organisation",
            )
        return address

    @property
    def transport(self) -> Transport:
        """The settings' transport, built with them (and dropped with them at close)."""
        if self._transport is None:
            self._transport = transport_for(self.mail, timeout=self.timeout)
        return self._transport

    def has_session(self, mailbox: str) -> bool:
        return self._transport is not None and self._transport.has_session(mailbox)

    def ensure_session(self, mailbox: str) -> None:
        """Sign in for ``mailbox`` now (a rate-limited sender waits after)."""
        self.transport.open(mailbox)

    # -- Django's contract ---------------------------------------------------------

    def open(self) -> bool:
        if self._open:
            return False
        try:
            mail = self.mail
            if mail.use_sender_email or mail.auth_type != endpoint.OAUTH2:
                self.transport.open(mail.sender_email)
        except DeliveryError:
            self.close()
            if self.fail_silently:
                return False
            raise
        self._open = True
        return True

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close_all()
        self._open = False
        self._mail = None

    def close_session(self, mailbox: str) -> None:
        if self._transport is not None:
            self._transport.close(mailbox)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        with self._lock:
            opened = self.open()
            if not self._open:
                return 0
            sent = 0
            try:
                for message in email_messages:
                    try:
                        if self.deliver(message):
                            sent += 1
                    except DeliveryError:
                        if not self.fail_silently:
                            raise
            finally:
                if opened:
                    self.close()
            return sent

    # -- one message ---------------------------------------------------------------

    def deliver(self, message: EmailMessage) -> str:
        """Send one message; returns the server's answer ("" when it has no recipient)."""
        return self.send_outgoing(self.outgoing(message))

    def send_outgoing(
        self, outgoing: Outgoing | None, *, meanwhile: Callable[[], None] | None = None
    ) -> str:
        """Send a message written by ``outgoing``; its server's answer."""
        if outgoing is None:
            return ""
        return self.transport.send(
            mailbox=outgoing.mailbox,
            recipients=outgoing.recipients,
            message=outgoing.payload,
            meanwhile=meanwhile,
        )

    def outgoing(self, message: EmailMessage) -> Outgoing | None:
        """The message as it will leave: its mailbox, envelope recipients and bytes as the
        transport carries them (None when it has no recipient). Written before its turn, it
        waits no longer than that."""
        recipients = message.recipients()
        if not recipients:
            return None
        mailbox = self.mailbox_for(message)
        try:
            payload = self.transport.written(self._wire_message(message, mailbox), recipients)
        except (UnicodeError, ValueError) as exc:
            # Django could not write a header (an address it cannot parse or encode): this
            # message's fault, and its text may quote anything; the type says enough.
            raise MessageRefused(
                f"This message could not be written as SMTP carries it ({type(exc).__name__}): "
                "an address in it is malformed or cannot be encoded.",
                stage="send",
                kind="unwritable",
            ) from None
        return Outgoing(mailbox, recipients, payload)

    def _wire_message(self, message: EmailMessage, mailbox: str) -> Message:
        """The MIME message to send, built from a copy: the caller's message is not changed."""
        outgoing = copy.copy(message)
        headers = dict(message.extra_headers)
        if self.mail.use_sender_email:
            original = parseaddr(headers.pop("From", "") or message.from_email)[1]
            for name in [name for name in headers if name.lower() == "from"]:
                del headers[name]
            outgoing.from_email = self.mail.sender_email
            if (
                original
                and original.lower() not in (mailbox.lower(), settings.DEFAULT_FROM_EMAIL.lower())
                and not message.reply_to
            ):
                # Replies still reach whoever the message was written for.
                outgoing.reply_to = [original]
        if not any(name.lower() == "message-id" for name in headers):
            # The outbox gave its messages theirs when they were queued (a copy sent again
            # after a worker died keeps it); this is for callers that send directly.
            headers["Message-ID"] = message_id_for(mailbox)
        outgoing.extra_headers = headers
        return outgoing.message()
