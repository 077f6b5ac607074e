"""A Microsoft Graph stand-in over HTTPS: ``POST /v1.0/users/{user}/sendMail`` with a MIME
message, checked as Graph checks it.

The bearer token must be the Entra stand-in's (signature, audience Graph, role Mail.Send,
its tenant's mailbox); an app may be limited to some mailboxes (Exchange's RBAC for
Applications, or an application access policy). Failures are Graph's error bodies; a
configured number of answers are 429 with Retry-After. What is accepted is delivered like
the Exchange stand-in's mail, into the same list and folder, its Bcc header removed.

Switches, so that an administrator can watch Validate and the outbox diagnose Graph's
refusals by hand (``make sandbox`` prints them; ``python -m tests.sandbox`` takes the same as
flags): ``POST /sandbox/graph/throttle?requests=N&retry_after=S`` (the next N sendMail
answer 429 with ``Retry-After: S``), ``POST /sandbox/graph/out-of-scope?mailbox=A`` (the app
may no longer send as A: 403 ErrorAccessDenied, as RBAC for Applications answers),
``POST /sandbox/graph/in-scope?mailbox=A`` and ``POST /sandbox/graph/reset``. They are the
sandbox's, not Graph's: nothing like them exists at Microsoft.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import json
import time
from dataclasses import dataclass, field
from email.utils import getaddresses, parseaddr
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

from .directory import EXCHANGE_RESOURCE, GRAPH_RESOURCE, SEND_AS_APP, Directory
from .https import HttpsStandIn

MAIL_SEND = "Mail.Send"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Graph takes at most this much in one request; bigger messages need an upload session.
LARGEST_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass
class GraphEnvelope:
    """What the Exchange stand-in's aiosmtpd envelope holds, for mail that came via Graph."""

    mail_from: str
    rcpt_tos: list[str] = field(default_factory=list)


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class GraphStandIn(HttpsStandIn):
    """Start with ``start()``; ``base_url`` is what SMTP_GRAPH_HOSTS must allow."""

    def __init__(
        self,
        directory: Directory,
        entra_public_key: Any,
        context: Any,
        exchange: Any,
        port: int = 0,
    ) -> None:
        self.directory = directory
        self.entra_public_key = entra_public_key
        # Mail that came through Graph lands where the Exchange stand-in's lands.
        self.exchange = exchange
        # Answer this many requests with 429 and Retry-After: throttle_seconds.
        self.throttle_next = 0
        self.throttle_seconds = 3
        # Answer this many requests with 503 (Graph is busy).
        self.busy_next = 0
        self.requests: list[dict[str, Any]] = []
        self._serve(_handler_for(self), context, port)

    # -- the sandbox's switches ---------------------------------------------------------

    def throttle(self, requests: int, retry_after: int | None = None) -> None:
        """The next ``requests`` sendMail calls answer 429 with Retry-After."""
        self.throttle_next = max(0, requests)
        if retry_after is not None:
            self.throttle_seconds = max(0, retry_after)

    def scope(self, mailbox: str, *, inside: bool, client_id: str = "") -> list[str]:
        """Put ``mailbox`` out of (or back into) the Graph scope of every app of its tenant
        (or of ``client_id``'s), as RBAC for Applications or an application access policy
        would; returns the apps' client IDs changed."""
        if not mailbox:
            raise GraphError(
                400, "ErrorInvalidRequest", "Name the mailbox: add ?mailbox=<address>."
            )
        found = self.directory.mailbox(mailbox)
        if found is None:
            raise GraphError(404, "ErrorInvalidUser", f"No mailbox {mailbox} in the sandbox.")
        tenant, box = found
        apps = [app for app in tenant.apps.values() if client_id in ("", app.client_id)]
        if not apps:
            raise GraphError(404, "ResourceNotFound", f"No app {client_id} in the sandbox.")
        everyone = set(tenant.mailboxes)
        for app in apps:
            allowed = set(tenant.graph_scopes.get(app.service_principal_id, everyone))
            (allowed.add if inside else allowed.discard)(box.address)
            if allowed >= everyone:
                tenant.graph_scopes.pop(app.service_principal_id, None)  # no scope: all
            else:
                tenant.graph_scopes[app.service_principal_id] = allowed
        return [app.client_id for app in apps]

    def permissions(self, *, mail_send: bool | None, smtp_send_as: bool | None) -> None:
        """Grant or withdraw (with admin consent) Graph's Mail.Send and Exchange's
        SMTP.SendAsApp for every app, as an administrator would in Entra ID; tokens issued
        from then on carry what holds."""
        for tenant in self.directory.tenants.values():
            for app in tenant.apps.values():
                for resource, role, on in (
                    (GRAPH_RESOURCE, MAIL_SEND, mail_send),
                    (EXCHANGE_RESOURCE, SEND_AS_APP, smtp_send_as),
                ):
                    if on is not None:
                        app.roles[resource] = [role] if on else []

    def _granted(self) -> dict[str, dict[str, bool]]:
        """Per app, whether Mail.Send and SMTP.SendAsApp are granted now."""
        return {
            app.client_id: {
                "mail_send": MAIL_SEND in app.roles.get(GRAPH_RESOURCE, []),
                "smtp_send_as": SEND_AS_APP in app.roles.get(EXCHANGE_RESOURCE, []),
            }
            for tenant in self.directory.tenants.values()
            for app in tenant.apps.values()
        }

    def reset(self) -> None:
        self.throttle_next = self.busy_next = 0
        self.permissions(mail_send=True, smtp_send_as=True)
        for tenant in self.directory.tenants.values():
            tenant.graph_scopes.clear()

    def switch(self, action: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """``POST /sandbox/graph/<action>?...``: one of the switches; what now holds."""

        def given(name: str, default: str = "") -> str:
            return (query.get(name) or [default])[0]

        try:
            if action == "throttle":
                retry_after = given("retry_after")
                self.throttle(
                    int(given("requests", "1")), int(retry_after) if retry_after else None
                )
            elif action in ("out-of-scope", "in-scope"):
                self.scope(given("mailbox"), inside=action == "in-scope", client_id=given("app"))
            elif action == "permission":
                switch = {"on": True, "off": False, "": None}
                self.permissions(
                    mail_send=switch[given("mail_send")],
                    smtp_send_as=switch[given("smtp_send_as")],
                )
            elif action == "reset":
                self.reset()
            else:
                raise GraphError(404, "ResourceNotFound", f"No sandbox switch {action}.")
        except (ValueError, KeyError):
            raise GraphError(
                400,
                "BadRequest",
                "requests and retry_after are whole numbers; mail_send and smtp_send_as are "
                "on or off.",
            ) from None
        return {
            "throttle_next": self.throttle_next,
            "retry_after": self.throttle_seconds,
            "permissions": self._granted(),
            "scopes": {
                sp: sorted(allowed)
                for tenant in self.directory.tenants.values()
                for sp, allowed in tenant.graph_scopes.items()
            },
        }

    # -- sendMail -------------------------------------------------------------------------

    def send_mail(self, user: str, authorization: str, content_type: str, body: bytes) -> None:
        # "at": when the request arrived (time.time()), for tests of when mail may leave.
        self.requests.append(
            {"user": user, "content_type": content_type, "size": len(body), "at": time.time()}
        )
        if self.throttle_next:
            self.throttle_next -= 1
            raise GraphError(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                **{"Retry-After": str(self.throttle_seconds)},
            )
        if self.busy_next:
            self.busy_next -= 1
            raise GraphError(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        claims = self._claims(authorization)
        tenant = self.directory.tenants.get(str(claims.get("tid", "")))
        if tenant is None:
            raise GraphError(401, "InvalidAuthenticationToken", "The token's tenant is unknown.")
        granted_by_exchange = str(claims.get("oid", "")) in tenant.graph_rbac_grants
        if MAIL_SEND not in claims.get("roles", []) and not granted_by_exchange:
            raise GraphError(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        mailbox = tenant.mailboxes.get(user.lower())
        if mailbox is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        if mailbox.graph_disabled:
            raise GraphError(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        scope = tenant.graph_scopes.get(str(claims.get("oid", "")))
        if scope is not None and mailbox.address not in scope:
            raise GraphError(
                403,
                "ErrorAccessDenied",
                "Access to OData is disabled: the app's "
                "access to this mailbox is limited by an RBAC for Applications "
                "scope or an application access policy.",
            )
        if not content_type.startswith("text/plain"):
            raise GraphError(
                400,
                "ErrorMimeContentInvalid",
                "A MIME message is sent as base64 in a text/plain body.",
            )
        if len(body) > LARGEST_REQUEST_BYTES:
            raise GraphError(
                413, "RequestBodyTooLarge", "The maximum request length supported is 4MB."
            )
        try:
            mime = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise GraphError(
                400,
                "ErrorMimeContentInvalidBase64String",
                "Invalid base64 string for MIME content.",
            ) from None
        self._deliver(mailbox.address, mailbox.send_as, mime)

    def _claims(self, authorization: str) -> dict[str, Any]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            return jwt.decode(
                token,
                self.entra_public_key,
                algorithms=["RS256"],
                audience=[GRAPH_RESOURCE, GRAPH_APP_ID],
            )
        except jwt.ExpiredSignatureError:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            ) from None
        except jwt.InvalidAudienceError:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            ) from None
        except jwt.PyJWTError:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure."
            ) from None

    def _deliver(self, address: str, send_as: set[str], mime: bytes) -> None:
        message = email.message_from_bytes(mime, policy=email.policy.default)
        sender = parseaddr(str(message.get("From", "")))[1].lower()
        if sender and sender != address and sender not in send_as:
            raise GraphError(
                403,
                "ErrorSendAsDenied",
                "The user account which was used to submit this request does not have the right to "
                f"send mail on behalf of the specified sending account '{sender}'.",
            )
        recipients = [
            a
            for _, a in getaddresses(
                [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
            )
        ]
        if not recipients:
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
        # As Exchange does: Bcc recipients get the message, the header goes.
        del message["Bcc"]
        self.exchange.delivered.append(
            (GraphEnvelope(mail_from=address, rcpt_tos=recipients), message.as_bytes())
        )


def _handler_for(stand_in: GraphStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            parts = [unquote(part) for part in self.path.split("?")[0].split("/") if part]
            if parts[:2] == ["sandbox", "graph"] and len(parts) == 3:
                try:
                    state = stand_in.switch(parts[2], parse_qs(urlsplit(self.path).query))
                except GraphError as error:
                    self._answer(
                        error.status, {"error": {"code": error.code, "message": error.message}}
                    )
                    return
                self._answer(200, state)
                return
            if (
                len(parts) != 4
                or parts[0] != "v1.0"
                or parts[1] != "users"
                or parts[3] != "sendMail"
            ):
                self._answer(
                    404, {"error": {"code": "ResourceNotFound", "message": "Resource not found."}}
                )
                return
            try:
                stand_in.send_mail(
                    parts[2],
                    self.headers.get("Authorization", ""),
                    self.headers.get("Content-Type", ""),
                    body,
                )
            except GraphError as error:
                self._answer(
                    error.status,
                    {"error": {"code": error.code, "message": error.message}},
                    error.headers,
                )
                return
            self._answer(202, None)

        def _answer(
            self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
        ) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
