"""A Django e-mail backend that delivers over the one transport with the saved Manage SMTP settings.

It keeps Django's contract: ``open()`` says whether it opened the backend, and
``send_messages()`` closes only what it opened, returns how many messages went,
and honours ``fail_silently``. Sessions are kept per sending mailbox (with
Use sender email off, each From address authenticates as its own mailbox) and
checked with NOOP before reuse. Failures are ``DeliveryError`` subclasses.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from email.message import Message
from email.utils import make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.encoding import punycode

from smtp_settings.mail import endpoint
from smtp_settings.mail.errors import DeliveryError, MessageRefused, classify
from smtp_settings.mail.oauth import Token, TokenError
from smtp_settings.mail.transport import SmtpConnection, SmtpFailure, ehlo_name

# A session idle for longer than this is checked with NOOP before it carries a message.
IDLE_CHECK_SECONDS = 1.0
# After these the session cannot be trusted with another command.
_BROKEN_KINDS = frozenset({"timeout", "disconnected", "protocol", "tls_failed"})


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


class _Session:
    def __init__(self, connection: SmtpConnection) -> None:
        self.connection = connection
        self.used_at = time.monotonic()


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
        self._sessions: dict[str, _Session] = {}
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

    def has_session(self, mailbox: str) -> bool:
        return self._session_key(mailbox) in self._sessions

    def ensure_session(self, mailbox: str) -> None:
        """Connect and authenticate for ``mailbox`` now (a rate-limited sender waits after)."""
        self._session(mailbox)

    def _session_key(self, mailbox: str) -> str:
        # Only XOAUTH2 authenticates as the mailbox; otherwise one session serves all.
        return mailbox if self.mail.auth_type == endpoint.OAUTH2 else ""

    # -- Django's contract ---------------------------------------------------------

    def open(self) -> bool:
        if self._open:
            return False
        try:
            mail = self.mail
            if mail.use_sender_email or mail.auth_type != endpoint.OAUTH2:
                self._session(mail.sender_email)
        except DeliveryError:
            self.close()
            if self.fail_silently:
                return False
            raise
        self._open = True
        return True

    def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            session.connection.close()
        self._open = False
        self._mail = None

    def close_session(self, mailbox: str) -> None:
        session = self._sessions.pop(self._session_key(mailbox), None)
        if session is not None:
            session.connection.close()

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
        recipients = message.recipients()
        if not recipients:
            return ""
        mailbox = self.mailbox_for(message)
        try:
            wire = self._wire_message(message, mailbox)
        except (UnicodeError, ValueError) as exc:
            # Django could not write a header (an address it cannot parse or encode): this
            # message's fault, and its text may quote anything; the type says enough.
            raise MessageRefused(
                f"This message could not be written as SMTP carries it ({type(exc).__name__}): "
                "an address in it is malformed or cannot be encoded.",
                stage="send",
                kind="unwritable",
            ) from None
        session = self._session(mailbox)
        try:
            answer = session.connection.send(sender=mailbox, recipients=recipients, message=wire)
        except SmtpFailure as failure:
            if failure.kind in _BROKEN_KINDS or failure.answer.startswith("421"):
                self.close_session(mailbox)
            raise classify(failure) from None
        session.used_at = time.monotonic()
        return answer

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

    # -- sessions ------------------------------------------------------------------

    def _session(self, mailbox: str) -> _Session:
        key = self._session_key(mailbox)
        session = self._sessions.get(key)
        if session is not None:
            idle = time.monotonic() - session.used_at
            if idle < IDLE_CHECK_SECONDS or session.connection.is_alive():
                return session
            self.close_session(mailbox)
        session = _Session(self._connect(mailbox))
        self._sessions[key] = session
        return session

    def _connect(self, mailbox: str) -> SmtpConnection:
        """A connected, secured and authenticated session; stored by the caller only then."""
        mail = self.mail
        connection = SmtpConnection(endpoint.smtp_endpoint(mail, timeout=self.timeout))
        token = None
        try:
            token = self._token(fresh=False)
            connection.connect()
            connection.secure()
            credentials = endpoint.credentials(mail, mailbox=mailbox, token=token)
            if credentials is not None:
                try:
                    connection.authenticate(credentials)
                except SmtpFailure as failure:
                    if not (token and token.from_cache and failure.answer.startswith("535")):
                        raise
                    # A cached token the server no longer takes (consent or roles changed):
                    # once more with a new one.
                    endpoint.forget_token(mail)
                    token = self._token(fresh=True)
                    credentials = endpoint.credentials(mail, mailbox=mailbox, token=token)
                    connection.authenticate(credentials)
        except (SmtpFailure, TokenError) as failure:
            connection.close()
            raise classify(failure, token=token) from None
        except BaseException:
            connection.close()
            raise
        return connection

    def _token(self, *, fresh: bool) -> Token | None:
        if self.mail.auth_type != endpoint.OAUTH2:
            return None
        return endpoint.acquire_token(self.mail, timeout=self.timeout, fresh=fresh)
