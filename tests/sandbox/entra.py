"""An Entra ID stand-in over HTTPS: OIDC discovery and the client-credentials token endpoint.

Issues RS256 JWTs with the claims Exchange checks (aud, roles, tid, appid, oid)
and answers each failure with Entra's error JSON (AADSTS codes included).
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from .directory import EXCHANGE_RESOURCE, GRAPH_RESOURCE, Directory, Tenant
from .https import HttpsStandIn

KNOWN_RESOURCES = (EXCHANGE_RESOURCE, GRAPH_RESOURCE)
_SHARED = {"common", "organizations", "consumers"}
_TENANT_SEGMENT = re.compile(r"^[A-Za-z0-9.-]+$")

MESSAGES = {
    7000215: "Invalid client secret provided. Ensure the secret being sent in the request is "
    "the client secret value, not the client secret ID, for a secret added to app '{app}'.",
    7000222: "The provided client secret keys for app '{app}' are expired.",
    7000218: "The request body must contain the following parameter: 'client_assertion' or "
    "'client_secret'.",
    700016: "Application with identifier '{app}' was not found in the directory '{tenant}'.",
    90002: "Tenant '{tenant}' not found.",
    900023: "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid "
    "external domain.",
    70011: "The provided request must include a 'scope' input parameter. The provided value "
    "for the input parameter 'scope' is not valid.",
    1002012: "The provided value for scope {scope} is not valid. Client credential flows must "
    "have a scope value with /.default suffixed to the resource identifier.",
    500011: "The resource principal named {scope} was not found in the tenant named {tenant}.",
    7000112: "Application '{app}' is disabled.",
    53003: "Access has been blocked by Conditional Access policies.",
    90033: "A transient error has occurred. Please try again.",
    700027: "The client assertion failed its signature check. (Reason - {reason} Thumbprint of "
    "the key used by the client: '{thumbprint}'.)",
    700021: "The client assertion's application identifier does not match the 'client_id' "
    "parameter.",
    700023: "The client assertion's audience claim does not match the token endpoint.",
    700024: "The client assertion is not within its valid time range.",
    50027: "The client assertion is not a valid JWT.",
    50194: "Application '{app}' is not configured as a multi-tenant application. Usage of the "
    "/common endpoint is not supported for such applications.",
}


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Entra allows this much between its clock and the assertion's times.
CLOCK_SKEW_SECONDS = 300


def _certificate_named(certificates: dict[str, str], named: str, *, sha256: bool) -> str | None:
    """The uploaded certificate whose thumbprint the assertion's header names (base64url)."""
    for pem in certificates.values():
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        digest = certificate.fingerprint(hashes.SHA256() if sha256 else hashes.SHA1())  # noqa: S303
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") == named:
            return pem
    return None


class EntraError(Exception):
    def __init__(self, status: int, error: str, code: int, **fill: str) -> None:
        super().__init__(error)
        self.status, self.error, self.code, self.fill = status, error, code, fill


class EntraStandIn(HttpsStandIn):
    """Start with ``start()``; ``token_endpoint(tenant)`` gives the URL to configure."""

    def __init__(self, directory: Directory, context: ssl.SSLContext, port: int = 0) -> None:
        self.directory = directory
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self.key.public_key()
        self.issued_tokens: list[str] = []
        # Client assertions received (certificate credentials), newest last.
        self.assertions: list[str] = []
        self.token_requests = 0
        self.delay_seconds = 0.0
        # Knobs for failures of Entra itself: a 5xx, or claims a real tenant would not issue.
        self.server_error = False
        self.claims_override: dict[str, Any] = {}
        self.forced_error: tuple[int, str, int] | None = None
        # A hostile or misconfigured authority: its discovery names a token endpoint
        # elsewhere, or its token endpoint redirects (307 keeps the POST body).
        self.discovery_token_endpoint = ""
        self.redirect_token_to = ""
        # Every POST the stand-in received on a path it does not serve, e.g. a redirect target.
        self.stray_posts: list[str] = []
        # Endpoints ("discovery", "token") that send their whole answer, status line first,
        # one byte every trickle_interval seconds: each read gets a byte in time, and the
        # answer never completes. Given up after trickle_limit seconds, or at stop().
        self.trickle: set[str] = set()
        self.trickle_interval = 1.0
        self.trickle_limit = 30.0
        # Appended to every error_description: what a hostile or broken endpoint might say.
        self.description_suffix = ""
        # Entra keeps a connection open for the next request; the stand-in closes it after
        # each answer unless told (the bench), so that tests never meet a pooled connection
        # of a sandbox gone.
        self.keep_alive = False
        self._stopping = threading.Event()
        self._serve(_handler_for(self), context, port)

    def token_endpoint(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}/oauth2/v2.0/token"

    def stop(self) -> None:
        self._stopping.set()  # a trickling answer gives up
        super().stop()

    def trickle_out(self, wfile: Any, data: bytes) -> None:
        started = time.monotonic()
        for index in range(len(data)):
            if self._stopping.is_set() or time.monotonic() - started > self.trickle_limit:
                return
            try:
                wfile.write(data[index : index + 1])
                wfile.flush()
            except OSError:
                return  # the client gave up
            self._stopping.wait(self.trickle_interval)

    # -- the two endpoints ----------------------------------------------------------

    def discovery(self, segment: str) -> dict[str, Any]:
        tenant = self._tenant(segment, allow_shared=True)
        issuer_tenant = tenant.tenant_id if tenant else "{tenantid}"
        return {
            "issuer": f"{self.base_url}/{issuer_tenant}/v2.0",
            "authorization_endpoint": f"{self.base_url}/{segment}/oauth2/v2.0/authorize",
            # Entra names the tenant by its ID here, whichever name it was asked for.
            "token_endpoint": self.discovery_token_endpoint
            or self.token_endpoint(tenant.tenant_id if tenant else segment),
            "cloud_instance_name": "microsoftonline.com",
            "jwks_uri": f"{self.base_url}/{segment}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "response_types_supported": ["code", "id_token", "token"],
        }

    def issue(self, segment: str, form: dict[str, str]) -> dict[str, Any]:
        self.token_requests += 1
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        client_id = form.get("client_id", "")
        if self.server_error:
            raise EntraError(503, "temporarily_unavailable", 90033)
        if self.forced_error:
            raise EntraError(*self.forced_error)
        if segment.lower() in _SHARED:
            raise EntraError(400, "invalid_request", 50194, app=client_id)
        tenant = self._tenant(segment, allow_shared=False)
        assert tenant is not None
        if form.get("grant_type") != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", 70003)
        app = tenant.apps.get(client_id)
        if app is None:
            raise EntraError(400, "unauthorized_client", 700016, app=client_id, tenant=segment)
        if form.get("client_assertion"):
            self._check_assertion(form, app, tenant.tenant_id, segment)
        else:
            secret = form.get("client_secret", "")
            if not secret:
                raise EntraError(401, "invalid_client", 7000218)
            if secret not in app.secrets:
                raise EntraError(401, "invalid_client", 7000215, app=client_id)
            if app.secrets[secret]:
                raise EntraError(401, "invalid_client", 7000222, app=client_id)
        if not app.enabled:
            raise EntraError(400, "unauthorized_client", 7000112, app=client_id)
        resource = self._resource(form.get("scope", ""), tenant.tenant_id)
        if app.blocked_by_conditional_access:
            raise EntraError(400, "invalid_grant", 53003)
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + 3599,
            "appid": app.client_id,
            "appidacr": "1",
            "idp": f"https://sts.windows.net/{tenant.tenant_id}/",
            "oid": app.service_principal_id,
            "sub": app.service_principal_id,
            "tid": tenant.tenant_id,
            "roles": list(app.roles.get(resource, [])),
            "ver": "1.0",
            **self.claims_override,
        }
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "sandbox"})
        self.issued_tokens.append(token)
        return {
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": token,
        }

    def _check_assertion(
        self, form: dict[str, str], app: Any, tenant_id: str, segment: str
    ) -> None:
        """A certificate credential, checked as Entra checks it: the certificate named by the
        assertion's x5t#S256 (or x5t) among the app's uploaded ones, the signature (RS256 or
        PS256), iss = sub = the client, aud = this token endpoint, the time window."""
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise EntraError(401, "invalid_client", 7000218)
        assertion = form["client_assertion"]
        self.assertions.append(assertion)
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise EntraError(401, "invalid_client", 50027) from None
        named = (header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        pem = _certificate_named(app.certificates, named, sha256="x5t#S256" in header)
        if pem is None:
            raise EntraError(
                401, "invalid_client", 700027, reason="The key was not found.", thumbprint=named
            )
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        public_key = certificate.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)  # uploads are RSA certificates
        try:
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256", "PS256"],
                # The times are Entra's own check below (700024), not a signature failure.
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                reason="The signature is not valid.",
                thumbprint=named,
            ) from None
        if certificate.not_valid_after_utc < datetime.now(UTC):
            raise EntraError(
                401, "invalid_client", 700027, reason="The key has expired.", thumbprint=named
            )
        if not claims.get("iss") == claims.get("sub") == app.client_id:
            raise EntraError(401, "invalid_client", 700021)
        audiences = {self.token_endpoint(tenant_id), self.token_endpoint(segment)}
        if claims.get("aud") not in audiences:
            raise EntraError(401, "invalid_client", 700023)
        now = time.time()
        if not (
            claims.get("nbf", 0) - CLOCK_SKEW_SECONDS
            <= now
            < claims.get("exp", 0) + CLOCK_SKEW_SECONDS
        ):
            raise EntraError(401, "invalid_client", 700024)

    def _tenant(self, segment: str, *, allow_shared: bool) -> Tenant | None:
        if segment.lower() in _SHARED and allow_shared:
            return None
        if not _TENANT_SEGMENT.match(segment):
            raise EntraError(400, "invalid_request", 900023, tenant=segment)
        tenant = self.directory.find(segment)
        if tenant is None:
            raise EntraError(400, "invalid_tenant", 90002, tenant=segment)
        return tenant

    @staticmethod
    def _resource(scope_text: str, tenant_id: str) -> str:
        scopes = scope_text.split()
        if not scopes or any(not re.match(r"^[\w:/.\-]+$", scope) for scope in scopes):
            raise EntraError(400, "invalid_scope", 70011)
        for scope in scopes:
            if not scope.endswith("/.default"):
                raise EntraError(400, "invalid_scope", 1002012, scope=scope)
        resource = scopes[0].removesuffix("/.default").rstrip("/")
        if resource not in KNOWN_RESOURCES:
            raise EntraError(400, "invalid_resource", 500011, scope=resource, tenant=tenant_id)
        return resource


def error_body(error: EntraError, suffix: str = "") -> dict[str, Any]:
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    text = MESSAGES.get(error.code, "The request was refused.")
    text = text.format_map({"app": "", "tenant": "", "scope": "", **error.fill})
    return {
        "error": error.error,
        "error_description": f"AADSTS{error.code}: {text} Trace ID: {trace_id} "
        f"Correlation ID: {correlation_id} Timestamp: {stamp}{suffix}",
        "error_codes": [error.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": "https://login.microsoftonline.com/error?code=" + str(error.code),
    }


def _handler_for(stand_in: EntraStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "EntraStandIn/1.0"
        # Headers and body go out in two writes: with Nagle's algorithm a kept connection
        # would hold the body until the client's delayed ACK (40 ms).
        disable_nagle_algorithm = True

        @property  # type: ignore[override]
        def protocol_version(self) -> str:  # read per request: HTTP/1.1 keeps the connection
            return "HTTP/1.1" if stand_in.keep_alive else "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests carry secrets in their bodies; nothing is logged

        def _send(self, status: int, body: dict[str, Any], endpoint: str = "") -> None:
            payload = json.dumps(body).encode()
            if endpoint in stand_in.trickle:
                head = (
                    f"HTTP/1.1 {status} {self.responses[status][0]}\r\n"
                    "Content-Type: application/json; charset=utf-8\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n"
                )
                self.close_connection = True
                stand_in.trickle_out(self.wfile, head.encode() + payload)
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            parts = [part for part in self.path.split("?")[0].split("/") if part]
            if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                try:
                    self._send(200, stand_in.discovery(parts[0]), "discovery")
                except EntraError as error:
                    self._send(error.status, error_body(error, stand_in.description_suffix))
                return
            self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            parts = [part for part in self.path.split("?")[0].split("/") if part]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if parts[:2] == ["sandbox", "certificates"] and len(parts) == 3:
                # Entra's "Upload certificate", for `make sandbox`: the .cer (DER) or the
                # .pem in the body.
                app = next(
                    (
                        t.apps[parts[2]]
                        for t in stand_in.directory.tenants.values()
                        if parts[2] in t.apps
                    ),
                    None,
                )
                if app is None:
                    self._send(404, {"error": "no such app"})
                    return
                try:
                    self._send(200, {"thumbprint": app.add_certificate(raw)})
                except ValueError:
                    self._send(400, {"error": "the body is not a certificate (.cer or .pem)"})
                return
            body = raw.decode(errors="replace")
            form = {k: v[0] for k, v in parse_qs(body).items()}
            if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                if stand_in.redirect_token_to:
                    self.send_response(307)
                    self.send_header("Location", stand_in.redirect_token_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    self._send(200, stand_in.issue(parts[0], form), "token")
                except EntraError as error:
                    self._send(
                        error.status, error_body(error, stand_in.description_suffix), "token"
                    )
                return
            stand_in.stray_posts.append(self.path)
            self._send(404, {"error": "not_found"})

    return Handler
