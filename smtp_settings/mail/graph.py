"""Microsoft Graph behind the transport seam: ``POST /v1.0/users/{mailbox}/sendMail``.

The message goes as MIME (base64 in a ``text/plain`` body), exactly as Django built it:
headers, Reply-To, attachments and Message-ID are the backend's; Bcc recipients travel in
a Bcc header, which Graph delivers to and removes. The app-only token is Graph's (per
cloud) and comes only through ``endpoint.acquire_token``; it is sent only to Graph's
host, through the same pinned session as token requests (no redirects, one deadline per
exchange, TLS verified). Graph's answers become ``DeliveryError`` subclasses, so the
outbox's rules (hold, defer, fail this message) apply unchanged.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from email.generator import BytesGenerator
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from io import BytesIO
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from external_text import printable
from smtp_settings.mail import endpoint, jwt_claims, microsoft
from smtp_settings.mail.errors import (
    CredentialFailure,
    DeliveryError,
    MessageRefused,
    TemporaryFailure,
    classify,
)
from smtp_settings.mail.oauth import Token, TokenError
from smtp_settings.mail.pinned_http import (
    EndpointRefused,
    Origin,
    PinnedSession,
    origin_of,
    origin_of_host,
)

# Graph takes at most this much in one request (the base64 body); more needs an upload
# session, which the console does not build: such a message fails with this reason.
LARGEST_REQUEST_BYTES = 4 * 1024 * 1024
# A token this close to its end is replaced before the next message.
_TOKEN_MARGIN_SECONDS = 300
# A Retry-After longer than this is read as this (a server's typo must not park mail).
_LONGEST_RETRY_AFTER = 3600.0
# Graph's error codes that concern one message, not the settings.
_MESSAGE_CODES = frozenset(
    {"ErrorInvalidRecipients", "ErrorMimeContentInvalid", "ErrorMimeContentInvalidBase64String"}
)
_KIND_BY_CODE = {
    "InvalidAuthenticationToken": "graph_invalid_token",
    "ErrorAccessDenied": "graph_access_denied",
    "ErrorInvalidUser": "graph_invalid_user",
    "MailboxNotEnabledForRESTAPI": "graph_not_rest",
    "ErrorSendAsDenied": "graph_send_as_denied",
    "ErrorInvalidRecipients": "graph_recipients",
    "RequestBodyTooLarge": "graph_too_large",
}


def _host_allowed(origin: Origin) -> bool:
    host, port = origin
    if host in microsoft.GRAPH_HOSTS and port == 443:
        return True
    allowed = settings.SMTP_GRAPH_HOSTS
    return host in allowed or f"{host}:{port}" in allowed


def graph_origin(mail: endpoint.MailSettings) -> Origin:
    """Where Graph is for these settings: Graph Host if given (Microsoft's, or allowed by
    SMTP_GRAPH_HOSTS), else the Graph of the token endpoint's cloud."""
    if mail.graph_host:
        origin = origin_of_host(mail.graph_host)
        if not _host_allowed(origin):
            raise CredentialFailure(
                f"{mail.graph_host} is not a Microsoft Graph host, and the access token would "
                "be sent there. An operator can allow it with SMTP_GRAPH_HOSTS.",
                stage="settings",
                kind="graph_host_not_allowed",
            )
        return origin
    cloud = microsoft.cloud_for_login_host(origin_of(mail.token_endpoint)[0])
    if cloud is None:
        raise CredentialFailure(
            "The token endpoint is not on a Microsoft login host, so the console cannot tell "
            "which Microsoft Graph to use: enter Graph Host.",
            stage="settings",
            kind="graph_host_unknown",
        )
    return (cloud.graph_host, 443)


def graph_scope(mail: endpoint.MailSettings) -> str:
    """``https://graph.microsoft.com/.default`` or the sovereign cloud's Graph: the cloud of
    Graph Host, else of the token endpoint, else the worldwide one."""
    graph_host = origin_of_host(mail.graph_host)[0] if mail.graph_host else ""
    cloud = (
        microsoft.cloud_for_graph_host(graph_host)
        or microsoft.cloud_for_login_host(origin_of(mail.token_endpoint)[0])
        or microsoft.GLOBAL
    )
    return f"{cloud.graph_resource}/.default"


def mime_bytes(message: Message, recipients: list[str]) -> bytes:
    """The MIME Graph is given: Django's message with CRLF line ends, plus a Bcc header
    naming the recipients no To or Cc header names (Graph sends to the headers' addresses
    only, and drops Bcc before delivery)."""
    named = {
        address.lower()
        for _, address in getaddresses(
            [str(value) for header in ("To", "Cc") for value in message.get_all(header, [])]
        )
    }
    hidden = [address for address in recipients if address.lower() not in named]
    del message["Bcc"]
    if hidden:
        message["Bcc"] = ", ".join(hidden)
    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=message.policy.clone(linesep="\r\n")).flatten(
        message
    )
    return buffer.getvalue()


def retry_after_seconds(value: str) -> float | None:
    """An HTTP Retry-After (seconds, or a date) as seconds from now; None if unreadable."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), _LONGEST_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), _LONGEST_RETRY_AFTER)


def _foreign(own: Origin, host: str) -> str:
    return (
        f"A Graph request was pointed at {host}, another host than {own[0]}; the access "
        "token is only ever sent to the Graph host."
    )


def _redirected(status: int, host: str) -> str:
    return (
        f"Microsoft Graph answered {status} and sends the request on to {host}; the console "
        "does not follow redirects with the access token."
    )


class GraphTransport:
    def __init__(self, mail: endpoint.MailSettings, *, timeout: float) -> None:
        self.mail = mail
        self.timeout = timeout
        self._token: Token | None = None
        self._token_until = 0.0
        self._session: PinnedSession | None = None

    # -- the transport's face ---------------------------------------------------------

    def has_session(self, mailbox: str) -> bool:
        return self._token is not None and time.monotonic() < self._token_until

    def open(self, mailbox: str) -> None:
        self._token_for_sending(fresh=False)

    def written(self, message: Message, recipients: list[str]) -> bytes:
        """The request's body: the MIME in base64, within Graph's size for one request."""
        body = base64.b64encode(mime_bytes(message, recipients))
        if len(body) > LARGEST_REQUEST_BYTES:
            raise MessageRefused(
                f"This message is {len(body) / 1024 / 1024:.1f} MB as Microsoft Graph carries "
                "it (base64), over Graph's 4 MB limit for one request: it cannot be sent "
                "through Graph. Send smaller attachments, or a link to the file.",
                stage="send",
                kind="graph_too_large",
            )
        return body

    def send(
        self,
        *,
        mailbox: str,
        recipients: list[str],
        message: Message | bytes,
        meanwhile: Callable[[], None] | None = None,
    ) -> str:
        # ``meanwhile`` is left: requests writes the call and reads its answer as one.
        body = message if isinstance(message, bytes) else self.written(message, recipients)
        token = self._token_for_sending(fresh=False)
        response = self._post(mailbox, body, token)
        if response.status_code in (401, 403) and token.from_cache:
            # A cached token Graph no longer takes (401), or one issued before a permission
            # was granted (403: Mail.Send added in Entra ID since; a token carries the roles
            # of when it was issued, for up to an hour): once more with a new one, so mail
            # held for the missing permission leaves at the Retry after the fix.
            endpoint.forget_token(self.mail)
            token = self._token_for_sending(fresh=True)
            response = self._post(mailbox, body, token)
        if response.status_code == 202:
            return "202 Accepted (Microsoft Graph sendMail)"
        raise graph_failure(response, token=token)

    def close(self, mailbox: str) -> None:
        self.close_all()

    def close_all(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()
        self._token = None

    # -- token and request ------------------------------------------------------------

    def _token_for_sending(self, *, fresh: bool) -> Token:
        if not fresh and self._token is not None and self.has_session(""):
            return self._token
        try:
            token = endpoint.acquire_token(
                self.mail, timeout=self.timeout, fresh=fresh, scopes=[graph_scope(self.mail)]
            )
        except TokenError as failure:
            raise classify(failure) from None
        self._token = token
        self._token_until = time.monotonic() + max(token.expires_in - _TOKEN_MARGIN_SECONDS, 0)
        return token

    def _post(self, mailbox: str, body: bytes, token: Token) -> requests.Response:
        origin = graph_origin(self.mail)
        if self._session is None:
            self._session = PinnedSession(
                origin, timeout=self.timeout, foreign=_foreign, redirected=_redirected
            )
        host = origin[0] if origin[1] == 443 else f"{origin[0]}:{origin[1]}"
        url = f"https://{host}/v1.0/users/{quote(mailbox, safe='@')}/sendMail"
        headers = {"Authorization": f"Bearer {token.access_token}", "Content-Type": "text/plain"}
        try:
            return self._session.post(url, data=body, headers=headers)
        except EndpointRefused as exc:
            raise CredentialFailure(exc.message, stage="send", kind=exc.kind) from None
        except requests.exceptions.SSLError as exc:
            raise CredentialFailure(
                f"TLS with Microsoft Graph ({host}) failed: {printable(str(exc))}",
                stage="send",
                kind="tls",
            ) from None
        except requests.exceptions.Timeout:
            raise TemporaryFailure(
                f"Microsoft Graph ({host}) did not answer within {self.timeout:g} s.",
                stage="send",
                kind="timeout",
            ) from None
        except requests.exceptions.RequestException as exc:
            self.close_all()
            raise TemporaryFailure(
                f"Could not reach Microsoft Graph ({host}): {type(exc).__name__}.",
                stage="send",
                kind="unreachable",
            ) from None


def _error_of(response: requests.Response) -> tuple[str, str]:
    """Graph's ``{"error": {"code", "message"}}``, cleaned; the status when there is none."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return printable(str(error.get("code", ""))), printable(str(error.get("message", "")))


def graph_failure(response: requests.Response, *, token: Token | None) -> DeliveryError:
    """A Graph answer other than 202 as the failure the outbox and Validate read."""
    status = response.status_code
    code, text = _error_of(response)
    answer = f"{status} {code}: {text}".strip().rstrip(":") if code else f"{status}"
    claims = jwt_claims.read_claims(token.access_token) if token else None
    kind = _KIND_BY_CODE.get(code, "graph_refused")
    message = f"Microsoft Graph refused the message: {answer}"
    if status == 429 or status >= 500:
        wait = retry_after_seconds(response.headers.get("Retry-After", ""))
        if wait is not None:
            # What Graph asked for is part of its answer: the outbox keeps to it.
            answer = f"{answer} (Retry-After: {wait:g} s)"
            message = f"Microsoft Graph refused the message: {answer}"
        return TemporaryFailure(
            message,
            stage="send",
            kind="graph_throttled" if status == 429 else "graph_busy",
            answer=answer,
            token_claims=claims,
            retry_after=wait,
        )
    if status == 413 or code in _MESSAGE_CODES or (status == 400 and kind == "graph_refused"):
        return MessageRefused(message, stage="send", kind=kind, answer=answer, token_claims=claims)
    return CredentialFailure(message, stage="send", kind=kind, answer=answer, token_claims=claims)
