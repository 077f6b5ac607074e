"""The one SMTP code path: connect, TLS, authenticate, send. Validate and real sending use it.

Each stage is its own method so that Validate can time and report it; every
failure becomes one :class:`SmtpFailure` naming the stage, the kind of failure
and the server's own answer. ``smtplib``'s debug output is never switched on:
it would print the access token.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import Message
from email.utils import parseaddr
from functools import cache
from io import BytesIO
from typing import Literal

from django.utils.encoding import punycode

from external_text import printable
from smtp_settings.mail import pipelining, tls, watchdog

Stage = Literal["connect", "tls", "authenticate", "sender", "send"]

# OpenSSL verification codes worth naming on their own.
_X509_EXPIRED = 10
_X509_HOSTNAME_MISMATCH = 62
_X509_IP_ADDRESS_MISMATCH = 64


class SmtpFailure(Exception):
    """A delivery failure: which stage, what kind, and what the server said (if anything)."""

    def __init__(self, stage: Stage, kind: str, message: str, *, answer: str = "") -> None:
        # Both may quote the server: cleaned here, once, before anyone logs or records them.
        message = printable(message)
        super().__init__(message)
        self.stage = stage
        self.kind = kind
        self.message = message
        self.answer = printable(answer, keep_lines=True)


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where to connect. ``implicit_tls``: TLS from the first byte instead of STARTTLS."""

    host: str
    port: int
    use_tls: bool
    timeout: float
    implicit_tls: bool = False


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: ``oauth2`` (the secret is a token) or ``basic`` (a password)."""

    kind: str
    username: str = ""
    secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class TlsInfo:
    mode: str
    version: str
    cipher: str
    subject: str
    issuer: str
    not_after: str


class XOAuth2:
    """SASL XOAUTH2 for ``smtplib.SMTP.auth``: the token on the first challenge, then empty.

    A second 334 carries an error (Gmail's style); answering it with an empty line
    lets the server send its final 535.
    """

    def __init__(self, user: str, token: str) -> None:
        self._initial = f"user={user}\x01auth=Bearer {token}\x01\x01"
        self._calls = 0

    def __repr__(self) -> str:
        return "XOAuth2(...)"

    def __call__(self, challenge: bytes | None = None) -> str:
        self._calls += 1
        return self._initial if self._calls == 1 else ""


@cache
def ehlo_name() -> str:
    """This host's name for EHLO, looked up once: ``getfqdn()`` may ask DNS every time."""
    return socket.getfqdn()


def wire_bytes(message: Message) -> bytes:
    """The message as SMTP carries it (CRLF line ends), without a Bcc header."""
    del message["Bcc"]
    buffer = BytesIO()
    # No "From " mangling: a body line starting with "From " is sent as it was written.
    generator = BytesGenerator(
        buffer, mangle_from_=False, policy=message.policy.clone(linesep="\r\n")
    )
    generator.flatten(message)
    return buffer.getvalue()


def envelope_address(address: str, *, stage: Stage) -> str:
    """``address`` as MAIL FROM and RCPT TO carry it: the bare address, its domain in the
    IDNA (xn--) form, as Django's own SMTP backend writes it (``sanitize_address``).

    The console does not speak SMTPUTF8, so a part before @ that is not ASCII cannot be
    carried at all: that message is refused (``address_not_ascii``), not the session.
    """
    bare = parseaddr(address)[1] or address.strip()
    local, at, domain = bare.rpartition("@")
    if not at:
        local, domain = bare, ""
    if not local.isascii():
        raise SmtpFailure(
            stage,
            "address_not_ascii",
            f"The address {bare} cannot be sent to: the part before @ holds characters "
            "that SMTP carries only with SMTPUTF8, which the console does not use.",
        )
    if domain.isascii():
        return bare
    try:
        return f"{local}@{punycode(domain)}"
    except UnicodeError:
        raise SmtpFailure(
            stage,
            "address_not_ascii",
            f"The address {bare} cannot be sent to: its domain is not a valid international "
            "domain name.",
        ) from None


def _envelope_of(recipients: list[str]) -> tuple[list[str], list[SmtpFailure]]:
    """The recipients as RCPT TO carries them, and a failure for each it cannot carry."""
    envelope, unsendable = [], []
    for recipient in recipients:
        try:
            envelope.append(envelope_address(recipient, stage="send"))
        except SmtpFailure as failure:
            unsendable.append(failure)
    return envelope, unsendable


EXCERPT_LENGTH = 100
_REPLY_START = re.compile(rb"^\d{3}([ -]|\r?$)")


def printable_excerpt(text: bytes | str) -> str:
    """At most the first 100 printable characters of something that is not SMTP."""
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return "".join(ch for ch in decoded if ch.isprintable())[:EXCERPT_LENGTH]


def _refused(envelope: list[str], rcpts: list[tuple[int, bytes]]) -> list[tuple[str, str]]:
    """The recipients the server refused, each with its answer."""
    return [
        (address, _answer(*rcpt))
        for address, rcpt in zip(envelope, rcpts, strict=True)
        if rcpt[0] not in (250, 251)
    ]


def _sent_answer(answer: str, refused: list[tuple[str, str]], unsendable: list[SmtpFailure]) -> str:
    # The message went; whoever it did not go to is said with it, not dropped silently.
    missed = [f"Not sent to {address}: {why}" for address, why in refused]
    return "\n".join([answer, *missed, *(failure.message for failure in unsendable)])


def _mechanism_missing(connection: SmtpConnection, what: str) -> SmtpFailure:
    offered = " ".join(connection.mechanisms) or "no AUTH at all"
    return SmtpFailure(
        "authenticate",
        "mechanism_missing",
        f"The server {what} (it offers: {offered}).",
        answer=connection._ehlo_answer(),
    )


def _answer(code: int, text: bytes | str) -> str:
    """A server's reply as the console quotes it: its lines (smtplib joins them with LF),
    none of its control characters."""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return printable(f"{code} {text}".strip(), keep_lines=True)


def _name(attributes: tuple[tuple[tuple[str, str], ...], ...] | None) -> str:
    parts = [f"{key}={value}" for rdn in attributes or () for key, value in rdn]
    return printable(", ".join(parts))  # the certificate's own text, shown and logged


def _open_tcp(host: str, port: int, timeout: float) -> socket.socket:
    """Resolve ``host`` and open TCP to it; each way it can fail is its own kind."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SmtpFailure(
            "connect", "dns", f"The name {host} could not be resolved ({exc.strerror})."
        ) from None
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise SmtpFailure(
            "connect", "refused", f"{host} refused the connection on port {port}."
        ) from None
    except TimeoutError:
        raise SmtpFailure(
            "connect",
            "timeout",
            f"No TCP connection to {host}:{port} within {timeout:g} s.",
        ) from None
    except OSError as exc:
        raise SmtpFailure(
            "connect", "unreachable", f"{host}:{port} is unreachable ({exc.strerror or exc})."
        ) from None


def _refuse_if_not_smtp(sock: socket.socket, stage: Stage) -> None:
    """A look at the first bytes without taking them: smtplib's reader drops the first four
    characters of a line that has no reply code."""
    head = sock.recv(256, socket.MSG_PEEK)
    partial_code = len(head) < 4 and head.isdigit()  # the rest is on its way
    if head and not partial_code and not _REPLY_START.match(head):
        raise SmtpFailure(
            stage,
            "not_smtp",
            "This is not an SMTP server: it does not answer with an SMTP greeting.",
            answer=printable_excerpt(head.split(b"\n")[0]),
        )


def _tls_info(sock: ssl.SSLSocket, mode: str) -> TlsInfo:
    cert = sock.getpeercert() or {}
    return TlsInfo(
        mode=mode,
        version=sock.version() or "",
        cipher=(sock.cipher() or ("",))[0],
        subject=_name(cert.get("subject")),
        issuer=_name(cert.get("issuer")),
        not_after=str(cert.get("notAfter", "")),
    )


class _Smtp(smtplib.SMTP):
    # Set by smtplib's own connect(), which is not used here (the socket is opened apart).
    _host: str


class SmtpConnection:
    """One SMTP session, driven stage by stage: ``connect()`` then ``secure()`` then
    ``authenticate()``; then ``check_sender()`` and ``send()`` as often as needed;
    ``close()`` always (``cut()`` from another thread ends a stage under way there)."""

    def __init__(self, endpoint: SmtpEndpoint) -> None:
        self.endpoint = endpoint
        self._smtp = _Smtp(timeout=endpoint.timeout, local_hostname=ehlo_name())
        self._stage: Stage = "connect"
        self._aborted = False
        self.address = ""
        self.greeting = ""

    # -- stages -------------------------------------------------------------------

    def connect(self) -> str:
        """Resolve and open TCP; unless TLS comes first, read the greeting and say EHLO."""
        self._stage = "connect"
        with self._deadline():
            return self._connect()

    def _connect(self) -> str:
        host = self.endpoint.host
        sock = _open_tcp(host, self.endpoint.port, self.endpoint.timeout)
        self._smtp.sock = sock
        self._smtp.file = None
        self._smtp._host = host  # starttls() names the server by it
        peer = sock.getpeername()
        self.address = f"{peer[0]}:{peer[1]}"
        if not self.endpoint.implicit_tls:
            self._greet()
        return self.address

    def secure(self) -> TlsInfo | None:
        """STARTTLS, or TLS from the first byte on port 465; ``None`` when TLS is off."""
        self._stage = "tls"
        if not self.endpoint.use_tls:
            return None
        context = tls.client_context()
        with self._deadline(), self._failures():
            if self.endpoint.implicit_tls:
                self._smtp.sock = context.wrap_socket(
                    self._smtp.sock, server_hostname=self.endpoint.host
                )
                self._smtp.file = None
                self._greet()
                mode = "TLS from the first byte (port 465)"
            else:
                if not self._smtp.has_extn("starttls"):
                    raise SmtpFailure(
                        "tls",
                        "starttls_missing",
                        "The server does not offer STARTTLS.",
                        answer=self._ehlo_answer(),
                    )
                code, text = self._smtp.starttls(context=context)
                self._require(code == 220, "tls", "starttls_refused", code, text)
                code, text = self._smtp.ehlo()
                self._require(code == 250, "tls", "ehlo_refused", code, text)
                mode = "STARTTLS"
        sock = self._smtp.sock
        assert isinstance(sock, ssl.SSLSocket)
        return _tls_info(sock, mode)

    @property
    def mechanisms(self) -> list[str]:
        return self._smtp.esmtp_features.get("auth", "").upper().split()

    def authenticate(self, credentials: Credentials) -> str:
        """Authenticate as configured; returns the server's answer."""
        self._stage = "authenticate"
        if not isinstance(self._smtp.sock, ssl.SSLSocket):
            # Whatever the settings say: a token or password never crosses the network in clear.
            raise SmtpFailure(
                "authenticate",
                "plaintext_auth",
                "Not authenticating: the connection is not encrypted, and credentials are "
                "never sent in clear.",
            )
        offered = self.mechanisms
        with self._deadline(), self._failures():
            if credentials.kind == "oauth2":
                if "XOAUTH2" not in offered:
                    raise _mechanism_missing(self, "does not offer AUTH XOAUTH2")
                # The two-step dialogue: a token makes the one-line form about 2 KB,
                # longer than some servers accept on the AUTH line.
                code, text = self._smtp.auth(
                    "XOAUTH2",
                    XOAuth2(credentials.username, credentials.secret),
                    initial_response_ok=False,
                )
            else:
                if not {"LOGIN", "PLAIN"} & set(offered):
                    raise _mechanism_missing(self, "offers neither AUTH LOGIN nor AUTH PLAIN")
                code, text = self._smtp.login(credentials.username, credentials.secret)
        return _answer(code, text)

    def check_sender(self, sender: str, recipient: str) -> tuple[str, str]:
        """MAIL FROM and RCPT TO, then RSET: send-as refusals show without sending."""
        self._stage = "sender"
        sender = envelope_address(sender, stage="sender")
        recipient = envelope_address(recipient, stage="sender")
        with self._deadline(), self._failures():
            mail, rcpt = pipelining.sender_check(self._smtp, sender, recipient)
            self._require(mail[0] == 250, "sender", "mail_refused", *mail)
            self._require(rcpt[0] in (250, 251), "sender", "rcpt_refused", *rcpt)
        mail_answer, rcpt_answer = _answer(*mail), _answer(*rcpt)
        return mail_answer, rcpt_answer

    def send(
        self,
        *,
        sender: str,
        recipients: list[str],
        message: Message | bytes,
        meanwhile: pipelining.Meanwhile = None,
    ) -> str:
        """Send ``message`` (or its ``wire_bytes``) to ``recipients``; returns the server's
        queue answer, followed by a line for each recipient it did not go to (refused, or not
        carried). ``meanwhile`` runs while the server has the message, when the commands go
        grouped. Recipients travel in the envelope only: Bcc addresses never reach a header."""
        self._stage = "send"
        payload = message if isinstance(message, bytes) else wire_bytes(message)
        sender = envelope_address(sender, stage="send")
        envelope, unsendable = _envelope_of(recipients)
        if not envelope:
            # Nothing was said to the server: the session stays good for the next message.
            raise unsendable[0]
        with self._deadline(), self._failures():
            mail, rcpts, finish = pipelining.mail_transaction(
                self._smtp, sender, envelope, payload, meanwhile
            )
            self._require(mail[0] == 250, "send", "mail_refused", *mail)
            refused = _refused(envelope, rcpts)
            if len(refused) == len(envelope):
                self._smtp.rset()
                raise SmtpFailure(
                    "send", "rcpt_refused", "Every recipient was refused.", answer=refused[0][1]
                )
            code, text = finish()
            self._require(code == 250, "send", "data_refused", code, text)
        return _sent_answer(_answer(code, text), refused, unsendable)

    def is_alive(self) -> bool:
        """NOOP before reusing a connection: servers drop idle sessions."""
        try:
            return self._smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def close(self) -> None:
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._smtp.close()

    def cut(self) -> None:
        self._abort()

    # -- helpers ------------------------------------------------------------------

    def _greet(self) -> None:
        with self._failures():
            sock = self._smtp.sock
            if sock is not None and not isinstance(sock, ssl.SSLSocket):
                _refuse_if_not_smtp(sock, self._stage)
            code, text = self._smtp.getreply()
            if code == -1:
                # No reply code: some other service (SSH, HTTP...). Say so, and echo no more
                # of it than a glance needs.
                raise SmtpFailure(
                    self._stage,
                    "not_smtp",
                    "This is not an SMTP server: it does not answer with an SMTP greeting.",
                    answer=printable_excerpt(text),
                )
            self.greeting = _answer(code, text)
            self._require(code == 220, self._stage, "greeting_refused", code, text)
            code, text = self._smtp.ehlo()
            self._require(code == 250, self._stage, "ehlo_refused", code, text)

    def _ehlo_answer(self) -> str:
        response = self._smtp.ehlo_resp
        return _answer(250, response) if response else ""

    @staticmethod
    def _require(ok: bool, stage: Stage, kind: str, code: int, text: bytes | str) -> None:
        if not ok:
            raise _refusal(stage, kind, code, text)

    @contextmanager
    def _deadline(self) -> Iterator[None]:
        """One deadline for the whole stage, not only for each read: a server that trickles
        a line every few seconds has its connection cut when the stage's time is up."""
        deadline = watchdog.after(self.endpoint.timeout, self._abort)
        try:
            yield
        finally:
            deadline.cancel()

    def _abort(self) -> None:
        self._aborted = True
        sock = self._smtp.sock
        if sock is not None:
            with suppress(OSError):  # already closed: nothing to cut
                sock.shutdown(socket.SHUT_RDWR)

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """Turn what smtplib, ssl and sockets raise into one SmtpFailure for the current stage."""
        try:
            yield
        except SmtpFailure:
            raise
        except UnicodeError:
            # Its message quotes the text it could not encode: a password, maybe. Not repeated.
            if self._stage in ("sender", "send"):
                # MAIL, RCPT or DATA: this message's text, not the settings (no hold).
                raise SmtpFailure(
                    self._stage,
                    "address_not_ascii",
                    "This message could not be sent: an address in it holds characters SMTP "
                    "carries only with SMTPUTF8, which the console does not use.",
                ) from None
            raise SmtpFailure(
                self._stage,
                "not_ascii",
                "A value could not be sent: SMTP here carries ASCII only (user name or password).",
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            if self._aborted:
                raise SmtpFailure(
                    self._stage,
                    "timeout",
                    f"The server did not finish this step within {self.endpoint.timeout:g} s.",
                ) from None
            raise _failure_of(exc, self._stage, self.endpoint) from None


def _failure_of(
    exc: smtplib.SMTPException | OSError, stage: Stage, endpoint: SmtpEndpoint
) -> SmtpFailure:
    """What smtplib, ssl or a socket raised at ``stage``, as the console says it."""
    host, timeout = endpoint.host, endpoint.timeout
    if isinstance(exc, ssl.SSLCertVerificationError):
        kind = {
            _X509_HOSTNAME_MISMATCH: "tls_name_mismatch",
            _X509_IP_ADDRESS_MISMATCH: "tls_name_mismatch",
            _X509_EXPIRED: "tls_expired",
        }.get(exc.verify_code, "tls_untrusted")
        return SmtpFailure(
            "tls", kind, f"The certificate of {host} was not accepted: {exc.verify_message}."
        )
    if isinstance(exc, ssl.SSLError):
        return SmtpFailure("tls", "tls_failed", f"TLS failed: {exc.reason or exc}.")
    if isinstance(exc, smtplib.SMTPResponseException):
        return _refusal(stage, "refused", exc.smtp_code, exc.smtp_error)
    # smtplib reports a read that timed out as a disconnection.
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return SmtpFailure(stage, "timeout", f"The server did not answer within {timeout:g} s.")
    if stage == "tls" and isinstance(exc, ConnectionError):
        return SmtpFailure(
            "tls", "tls_failed", f"TLS failed: the server broke off the handshake ({exc})."
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SmtpFailure(
            stage, "disconnected", "The server closed the connection without an answer."
        )
    return SmtpFailure(stage, "protocol", f"The SMTP session failed: {exc}.")


def _refusal(stage: Stage, kind: str, code: int, text: bytes | str) -> SmtpFailure:
    answer = _answer(code, text)
    return SmtpFailure(
        stage,
        kind,
        f"The server refused this step with {answer.split()[0]}; its answer is below.",
        answer=answer,
    )
