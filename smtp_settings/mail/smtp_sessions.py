"""SMTP behind the transport seam: sessions kept per sending mailbox, checked before reuse.

Only XOAUTH2 authenticates as the mailbox, so with Basic or no authentication one
session serves every From address. A session idle for a while is checked with NOOP
before it carries a message; one the server or the network broke is dropped.
"""

from __future__ import annotations

import time
from email.message import Message

from smtp_settings.mail import endpoint
from smtp_settings.mail.errors import classify
from smtp_settings.mail.oauth import Token, TokenError
from smtp_settings.mail.pipelining import Meanwhile
from smtp_settings.mail.transport import SmtpConnection, SmtpFailure, wire_bytes

# A session idle for longer than this is checked with NOOP before it carries a message.
IDLE_CHECK_SECONDS = 1.0
# After these the session cannot be trusted with another command.
_BROKEN_KINDS = frozenset({"timeout", "disconnected", "protocol", "tls_failed"})


class _Session:
    def __init__(self, connection: SmtpConnection) -> None:
        self.connection = connection
        self.used_at = time.monotonic()


class SmtpTransport:
    def __init__(self, mail: endpoint.MailSettings, *, timeout: float) -> None:
        self.mail = mail
        self.timeout = timeout
        self._sessions: dict[str, _Session] = {}

    def _key(self, mailbox: str) -> str:
        return mailbox if self.mail.auth_type == endpoint.OAUTH2 else ""

    def has_session(self, mailbox: str) -> bool:
        return self._key(mailbox) in self._sessions

    def open(self, mailbox: str) -> None:
        self._session(mailbox)

    def written(self, message: Message, recipients: list[str]) -> bytes:
        return wire_bytes(message)

    def send(
        self,
        *,
        mailbox: str,
        recipients: list[str],
        message: Message | bytes,
        meanwhile: Meanwhile = None,
    ) -> str:
        session = self._session(mailbox)
        try:
            answer = session.connection.send(
                sender=mailbox, recipients=recipients, message=message, meanwhile=meanwhile
            )
        except SmtpFailure as failure:
            if failure.kind in _BROKEN_KINDS or failure.answer.startswith("421"):
                self.close(mailbox)
            raise classify(failure) from None
        session.used_at = time.monotonic()
        return answer

    def close(self, mailbox: str) -> None:
        session = self._sessions.pop(self._key(mailbox), None)
        if session is not None:
            session.connection.close()

    def close_all(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            session.connection.close()

    def _session(self, mailbox: str) -> _Session:
        key = self._key(mailbox)
        session = self._sessions.get(key)
        if session is not None:
            idle = time.monotonic() - session.used_at
            if idle < IDLE_CHECK_SECONDS or session.connection.is_alive():
                return session
            self.close(mailbox)
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
