"""An Exchange Online stand-in on aiosmtpd: STARTTLS, then AUTH XOAUTH2 checked like Exchange.

It verifies the token's signature (the Entra stand-in's key), audience, role and
expiry, that Exchange knows the service principal and that it has FullAccess on
the ``user=`` mailbox, and answers every failure with Exchange's own reply.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from email.utils import parseaddr
from typing import Any

import jwt
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from .directory import EXCHANGE_RESOURCE, SEND_AS_APP, Directory, Mailbox

EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
MAX_CONNECTIONS_PER_MAILBOX = 3

AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_FAILED = "535 5.7.3 Authentication unsuccessful [SandboxTenant]"
AUTH_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the {scope}."
)
BASIC_RETIRED = "550 5.7.30 Basic authentication is not supported for Client Submission."
CONCURRENCY = (
    "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending"
)
THROTTLED = "550 5.2.251 Mailbox {address} is throttled due to continuous invalid logon errors."
NOT_AUTHENTICATED = "530 5.7.57 Client not authenticated to send mail."
SEND_AS_ENVELOPE = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
IP_BLOCKED = "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP."
SEND_AS_HEADER = (
    "554 5.2.252 SendAsDenied; {mailbox} not allowed to send as {sender}; "
    "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied"
)
QUOTA = (
    "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; "
    "Failed to process message due to a permanent exception"
)
MAILBOX_FULL = "554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException"


class _Session(Session):
    """aiosmtpd's session without its legacy ``login_data``: aiosmtpd 1.4 still sets it after
    every successful AUTH and logs a deprecation WARNING each time; nothing here reads it
    (``auth_data`` holds the mailbox)."""

    def __init__(self, loop: Any) -> None:
        super().__init__(loop)
        # Where a connection that ends without QUIT left its last message (see
        # ExchangeHandler.release): the index in ``delivered`` of a message accepted whose
        # answer the client may not have read, or a message being received.
        self.unanswered: int | None = None
        self.in_data = False
        # A message's BDAT chunks so far.
        self.chunks: list[bytes] = []

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class ExchangeSMTP(SMTP):
    """aiosmtpd's server, with Exchange's answers where Exchange differs from the RFC defaults."""

    def _create_session(self) -> Session:
        return _Session(self.loop)

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        # Any command after an accepted DATA shows that the client read DATA's answer.
        if command != "DATA" and self.session is not None:
            self.session.unanswered = None
        return await super()._call_handler_hook(command, *args)

    async def smtp_DATA(self, arg: str) -> None:
        self.session.in_data = True
        try:
            await super().smtp_DATA(arg)
        except asyncio.CancelledError:
            raise  # the connection ended mid-message: release() counts it
        except BaseException:
            self.session.in_data = False
            raise
        self.session.in_data = False

    async def smtp_BDAT(self, arg: str) -> None:
        """CHUNKING (RFC 3030), which Exchange offers: ``BDAT <size> [LAST]`` then exactly
        that many bytes; at LAST the chunks are the message, judged as DATA's."""
        size, _, last = arg.strip().partition(" ")
        if not size.isdigit() or last.upper() not in ("", "LAST"):
            # The bytes that follow cannot be told from commands: the session ends.
            await self.push("501 5.5.4 Syntax error in BDAT parameters")
            self.transport.close()
            return
        self.session.in_data = True
        try:
            chunk = await self._reader.readexactly(int(size))
        except asyncio.IncompleteReadError:
            return  # the connection ended mid-chunk: release() counts it
        self.session.chunks.append(chunk)
        try:
            await self.push(await self._chunk_answer(int(size), last_chunk=bool(last)))
        finally:
            self.session.in_data = False

    async def _chunk_answer(self, size: int, *, last_chunk: bool) -> str:
        if not (self.envelope and self.envelope.rcpt_tos):
            self.session.chunks.clear()
            return "503 5.5.2 Need rcpt command"
        if not last_chunk:
            return f"250 2.0.0 {size} octets received"
        content = b"".join(self.session.chunks)
        self.session.chunks.clear()
        self.envelope.content = self.envelope.original_content = content
        answer = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        return answer

    # A token makes the XOAUTH2 response line about 2 KB.
    line_length_limit = 16384

    @property
    def _encrypted(self) -> bool:
        # STARTTLS sets _tls_protocol; TLS from the first byte shows on the transport.
        return bool(self._tls_protocol or self.transport.get_extra_info("ssl_object"))

    async def smtp_AUTH(self, arg: str) -> None:
        self.event_handler.seen_auth_commands += 1
        if not self._encrypted:
            await self.push("504 5.7.4 Unrecognized authentication type")
            return
        await super().smtp_AUTH(arg)

    async def smtp_EHLO(self, hostname: str) -> None:
        scripted = self.event_handler.after_starttls_answer
        if self._encrypted and scripted:
            await self.push(scripted)
            self.transport.close()
            return
        await super().smtp_EHLO(hostname)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.release(self.session)
        super().connection_lost(error)


class ExchangeHandler:
    def __init__(self, directory: Directory, public_key: Any) -> None:
        self.directory = directory
        self.public_key = public_key
        self.basic_users: dict[str, str] = {}
        self.ip_blocked = False
        # An answer to give after STARTTLS, for failures a modern client cannot cause
        # (Exchange's 421 4.7.66 to TLS 1.0/1.1 clients).
        self.after_starttls_answer = ""
        # Exchange Online offers PIPELINING (RFC 2920) and CHUNKING (RFC 3030); with either
        # off, clients fall back to DATA, or to one command at a time.
        self.pipelining = True
        self.chunking = True
        self.delivered: list[tuple[Envelope, bytes]] = []
        # When each delivered message arrived (time.monotonic()), for rate checks.
        self.received_at: list[float] = []
        # Answers to give, in order, before behaving normally: {"AUTH": [...], "DATA": [...]}.
        self.scripted: dict[str, list[str]] = {}
        # A plain relay for comparisons: MAIL without AUTH is accepted.
        self.allow_anonymous = False
        self.authenticated_sessions = 0
        # Every AUTH command received, accepted or not, encrypted or not.
        self.seen_auth_commands = 0
        # Answers to RCPT TO for particular recipients (unknown addresses and the like).
        self.recipient_answers: dict[str, str] = {}
        # Seconds to think before answering DATA (a slow server), and how many DATA
        # commands arrived, answered or not yet.
        self.data_delay_seconds = 0.0
        self.data_commands = 0
        # Connections that ended right after a message was accepted, before any further
        # command: the client may have died before it read the 250 (so it may send the message
        # again). Each entry is the message's index in ``delivered``.
        self.dropped_after_data: list[int] = []
        # Connections that ended while a message's content was arriving (no answer given).
        self.dropped_in_data = 0
        self._sessions: dict[int, str] = {}
        self._lock = threading.Lock()

    # -- XOAUTH2, the way Exchange checks it ----------------------------------------

    def next_scripted(self, command: str) -> str:
        with self._lock:
            answers = self.scripted.get(command)
            return answers.pop(0) if answers else ""

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 3:
            raw = base64.b64decode(args[2])
        else:
            raw = await server.challenge_auth("")
            if not isinstance(raw, bytes):
                return AuthResult(success=False, handled=True)
        fields = dict(
            part.split("=", 1) for part in raw.decode(errors="replace").split("\x01") if "=" in part
        )
        user = fields.get("user", "").lower()
        token = fields.get("auth", "").removeprefix("Bearer ")
        scripted = self.next_scripted("AUTH")
        if scripted:
            await server.push(scripted)
            return AuthResult(success=False, handled=True)
        answer, mailbox = self._check(user, token)
        if mailbox is None:
            await server.push(answer)
            return AuthResult(success=False, handled=True)
        with self._lock:
            if Counter(self._sessions.values())[mailbox.address] >= MAX_CONNECTIONS_PER_MAILBOX:
                await server.push(CONCURRENCY)
                return AuthResult(success=False, handled=True)
            self._sessions[id(server.session)] = mailbox.address
            self.authenticated_sessions += 1
        return AuthResult(success=True, auth_data=mailbox.address, message=AUTH_OK)

    def _check(self, user: str, token: str) -> tuple[str, Mailbox | None]:
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                audience=[EXCHANGE_RESOURCE, EXCHANGE_APP_ID],
                options={"require": ["exp", "aud", "tid"]},
            )
        except jwt.PyJWTError:
            return AUTH_FAILED, None
        found = self.directory.mailbox(user)
        if found is None:
            return AUTH_FAILED, None
        tenant, mailbox = found
        if mailbox.throttled:
            return THROTTLED.format(address=mailbox.address), None
        if claims.get("tid") != tenant.tenant_id or SEND_AS_APP not in claims.get("roles", []):
            return AUTH_FAILED, None
        principal = claims.get("oid", "")
        if principal not in tenant.exchange_service_principals:
            return AUTH_FAILED, None
        if principal not in mailbox.full_access:
            return AUTH_FAILED, None
        if mailbox.smtp_auth_disabled:
            return AUTH_DISABLED.format(scope="Mailbox"), None
        if tenant.smtp_auth_disabled:
            return AUTH_DISABLED.format(scope="Tenant"), None
        return AUTH_OK, mailbox

    # -- Basic: retired in Exchange Online, unless a user is configured here -------

    def authenticate_basic(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        login = data.login.decode(errors="replace")
        password = data.password.decode(errors="replace")
        if not self.basic_users:
            return AuthResult(success=False, handled=False, message=BASIC_RETIRED)
        if self.basic_users.get(login) == password:
            with self._lock:
                self._sessions[id(session)] = login.lower()
            return AuthResult(success=True, auth_data=login.lower())
        return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication failed")

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        offered = ["250-PIPELINING"] * self.pipelining + ["250-CHUNKING"] * self.chunking
        return [*responses[:-1], *offered, responses[-1]]

    # -- the envelope and the message --------------------------------------------

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.ip_blocked:
            return IP_BLOCKED
        if not session.authenticated and not self.allow_anonymous:
            return NOT_AUTHENTICATED
        mailbox = self._mailbox_of(session)
        if mailbox is not None:
            if mailbox.throttled:
                return THROTTLED.format(address=mailbox.address)
            allowed = {mailbox.address, *mailbox.send_as}
            if address.lower() not in allowed:
                return SEND_AS_ENVELOPE
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = self.recipient_answers.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_commands += 1
        if self.data_delay_seconds:
            await asyncio.sleep(self.data_delay_seconds)
        scripted = self.next_scripted("DATA")
        if scripted:
            return scripted
        mailbox = self._mailbox_of(session)
        content = envelope.original_content or b""
        # Parsed for every session alike, so a comparison of clients costs the server the same.
        message = email.message_from_bytes(content, policy=email.policy.default)
        sender = parseaddr(str(message.get("From", "")))[1].lower()
        if mailbox is not None:
            if mailbox.header_send_as_denied or sender not in {mailbox.address, *mailbox.send_as}:
                return SEND_AS_HEADER.format(mailbox=mailbox.address, sender=sender)
            if mailbox.quota_exceeded:
                return QUOTA
            if mailbox.full:
                return MAILBOX_FULL
        with self._lock:
            self.delivered.append((envelope, content))
            self.received_at.append(time.monotonic())
            session.unanswered = len(self.delivered) - 1
        return f"250 2.0.0 OK <{uuid.uuid4()}@sandbox> [Hostname=SANDBOX] Queued Mail for delivery"

    # -- bookkeeping -------------------------------------------------------------

    def _mailbox_of(self, session: Session) -> Mailbox | None:
        address = self._sessions.get(id(session))
        found = self.directory.mailbox(address) if address else None
        return found[1] if found else None

    def release(self, session: Session | None) -> None:
        with self._lock:
            self._sessions.pop(id(session), None)
            if session is None:
                return
            if getattr(session, "unanswered", None) is not None:
                self.dropped_after_data.append(session.unanswered)
            elif getattr(session, "in_data", False):
                self.dropped_in_data += 1


class _Controller(Controller):
    def factory(self) -> SMTP:
        return ExchangeSMTP(self.handler, **self.SMTP_kwargs)


class ExchangeStandIn:
    """SMTP on 127.0.0.1 with STARTTLS required before AUTH, as on smtp.office365.com:587."""

    def __init__(
        self,
        directory: Directory,
        public_key: Any,
        tls_context: ssl.SSLContext,
        port: int = 0,
        *,
        hostname: str = "sandbox.outlook.example",
        advertise_auth_before_tls: bool = False,
        excluded_mechanisms: tuple[str, ...] = (),
        implicit_tls: bool = False,
    ) -> None:
        self.handler = ExchangeHandler(directory, public_key)
        self.port = port or free_port()
        self._controller = _Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname=hostname,
            ident="Microsoft ESMTP MAIL Service (sandbox)",
            # TLS from the first byte (port 465 style), or STARTTLS as Exchange does.
            ssl_context=tls_context if implicit_tls else None,
            tls_context=None if implicit_tls else tls_context,
            require_starttls=not (advertise_auth_before_tls or implicit_tls),
            # Exchange offers AUTH only after STARTTLS; some front ends offer it before and
            # then refuse it (504 5.7.4).
            auth_require_tls=not (advertise_auth_before_tls or implicit_tls),
            auth_exclude_mechanism=["PLAIN", *excluded_mechanisms],
            authenticator=self.handler.authenticate_basic,
        )

    def start(self) -> ExchangeStandIn:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def delivered(self) -> list[tuple[Envelope, bytes]]:
        return self.handler.delivered


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
