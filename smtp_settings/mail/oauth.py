"""OAuth 2.0 client credentials with MSAL: one application object per secret, its token cache.

MSAL contacts the authority when the application object is built, so that
happens lazily, is bounded by the timeout, and a failed build is not kept.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from external_text import printable
from smtp_settings.mail import microsoft
from smtp_settings.mail.deadline import exchange_deadline
from smtp_settings.mail.pinned_http import EndpointRefused, Origin, PinnedSession, origin_of


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    expires_in: int
    from_cache: bool


class TokenError(Exception):
    """Entra ID (or the way to it) refused a token. Carries what diagnosis needs, no secret."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        error: str = "",
        error_codes: list[int] | None = None,
        correlation_id: str = "",
        trace_id: str = "",
    ) -> None:
        # All of it may come from the endpoint: cleaned here, once, before anyone logs it.
        message = printable(message)
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.error = printable(error)
        self.error_codes = error_codes or []
        self.correlation_id = printable(correlation_id)
        self.trace_id = printable(trace_id)


def authority_from_token_endpoint(token_endpoint: str) -> str:
    """``https://host/<tenant>/oauth2/v2.0/token`` -> ``https://host/<tenant>``."""
    authority = microsoft.authority_from_token_endpoint(token_endpoint)
    if authority is None:
        raise TokenError(
            "endpoint_shape",
            f"The token endpoint does not end in {microsoft.TOKEN_PATH_SUFFIX}.",
        )
    return authority


_AADSTS_CODE = re.compile(r"AADSTS(\d+)")
_AADSTS_TEXT = re.compile(r"AADSTS\d+:[^\"\\]*")

_apps: dict[tuple[str, str, str], msal.ConfidentialClientApplication] = {}
_apps_lock = threading.Lock()


# What proves the app: a client secret's value, or MSAL's certificate credential (the
# private key's PEM and the certificate's, from mail/certificate.py).
Credential = str | dict[str, str]


def _app_key(authority: str, client_id: str, client_secret: Credential) -> tuple[str, str, str]:
    # A hash of the credential: a replaced one takes effect at once, and the key holds
    # nothing that could be read back.
    material = (
        client_secret if isinstance(client_secret, str) else repr(sorted(client_secret.items()))
    )
    return (authority, client_id, hashlib.sha256(material.encode()).hexdigest())


def _application(
    *, authority: str, client_id: str, client_secret: Credential, timeout: float, fresh: bool
) -> msal.ConfidentialClientApplication:
    key = _app_key(authority, client_id, client_secret)
    with _apps_lock:
        app = _apps.get(key)
    if app is not None:
        if fresh:
            # A new token from Entra ID, not MSAL's cached one; the application (with the
            # authority's metadata it read once) is kept: a new one read it again, one
            # more HTTPS exchange and TLS handshake per Validate. A failed request drops
            # the application (``_forget``), so what is read after a fix is read anew.
            app.remove_tokens_for_client()
        return app
    host = (urlsplit(authority).hostname or "").lower()
    session = _pinned_session(authority, timeout=timeout)
    app = msal.ConfidentialClientApplication(
        client_id,
        client_credential=client_secret,
        authority=authority,
        http_client=session,
        azure_region=False,
        # Elsewhere than Microsoft's own hosts MSAL would ask login.microsoftonline.com.
        instance_discovery=host in WELL_KNOWN_AUTHORITY_HOSTS,
    )
    with _apps_lock:
        _apps[key] = app
    return app


def _pinned_session(authority: str, *, timeout: float) -> PinnedSession:
    """MSAL's HTTP client. Everything that carries the secret (every POST) goes to the
    authority's own host and port, and nowhere else: no redirect is followed, and a
    discovery document naming another host fails."""
    origin = origin_of(authority)
    microsoft_authority = origin[0] in WELL_KNOWN_AUTHORITY_HOSTS

    def may_get(other: Origin) -> bool:
        # MSAL's instance discovery asks Microsoft's own hosts, without the secret.
        return microsoft_authority and other[0] in WELL_KNOWN_AUTHORITY_HOSTS

    def foreign(own: Origin, host: str) -> str:
        return (
            f"The authority's discovery points the token request at {host}, another host "
            f"than {own[0]}; the client secret is only ever sent to the token endpoint's own "
            "host."
        )

    def redirected(status: int, host: str) -> str:
        return (
            f"The token endpoint answered {status} and sends the request on to {host}; the "
            "console does not follow redirects with the client secret."
        )

    return PinnedSession(
        origin, timeout=timeout, may_get=may_get, foreign=foreign, redirected=redirected
    )


def app_key(token_endpoint: str, client_id: str, client_secret: Credential) -> tuple[str, str, str]:
    """Names one credential of one app (a hash: nothing of the credential in it)."""
    return _app_key(token_endpoint, client_id, client_secret)


def _forget(authority: str, client_id: str, client_secret: Credential) -> None:
    with _apps_lock:
        _apps.pop(_app_key(authority, client_id, client_secret), None)


def forget(*, token_endpoint: str, client_id: str, client_secret: Credential) -> None:
    """Drop the application object, and so the cached token, of these credentials."""
    _forget(authority_from_token_endpoint(token_endpoint), client_id, client_secret)


def forget_applications() -> None:
    with _apps_lock:
        _apps.clear()
        _refused.clear()


# Credentials Entra refused lately while another one of the same app worked (by app_key).
_refused: dict[tuple[str, str, str], float] = {}


def refused_note(key: tuple[str, str, str]) -> None:
    with _apps_lock:
        _refused[key] = time.monotonic()


def refused_within(key: tuple[str, str, str], *, seconds: float) -> bool:
    with _apps_lock:
        at = _refused.get(key)
    return at is not None and time.monotonic() - at < seconds


def acquire_token(
    *,
    token_endpoint: str,
    client_id: str,
    client_secret: Credential,
    scopes: list[str],
    timeout: float,
    fresh: bool = False,
) -> Token:
    """A token for ``scopes``, from MSAL's cache while it has over five minutes left.

    ``fresh`` asks Entra ID anew (Validate: a consent granted a minute ago must show), and
    the new token then serves later sending too.
    """
    authority = authority_from_token_endpoint(token_endpoint)
    forget_app = functools.partial(_forget, authority, client_id, client_secret)
    try:
        # One deadline for the step: MSAL's discovery and the token request share it.
        with (
            _translated("the token endpoint", timeout=timeout, on_refused=forget_app),
            exchange_deadline(timeout),
        ):
            app = _application(
                authority=authority,
                client_id=client_id,
                client_secret=client_secret,
                timeout=timeout,
                fresh=fresh,
            )
            result: dict[str, Any] = app.acquire_token_for_client(scopes=scopes)
    except ValueError as exc:
        # Raised while reading the authority's metadata; Entra's own text is in __context__.
        context = str(exc.__context__ or "")
        entra_text = _AADSTS_TEXT.search(context)
        raise TokenError(
            "authority",
            entra_text.group(0) if entra_text else f"The authority {authority} was refused: {exc}",
            error_codes=[int(code) for code in _AADSTS_CODE.findall(context)],
        ) from None
    if "access_token" in result:
        return Token(
            access_token=result["access_token"],
            expires_in=int(result.get("expires_in", 0)),
            from_cache=result.get("token_source") == "cache",
        )
    # MSAL replays an identical error for a minute; after a fix in Entra ID the next
    # attempt must ask again, so this application object (and its replay cache) goes.
    forget_app()
    raise _refusal("refused", result, "No token was issued.")


@contextmanager
def _translated(
    peer: str, *, timeout: float, what: str = "", on_refused: Callable[[], None] | None = None
) -> Iterator[None]:
    """What the HTTP library and MSAL raise while asking ``peer``, as a ``TokenError``:
    said once for the token request and the tenant's discovery. ``on_refused`` runs when
    the pinned session refused the endpoint itself (a foreign host, a redirect)."""
    try:
        yield
    except EndpointRefused as exc:
        if on_refused is not None:
            on_refused()
        raise TokenError(exc.kind, exc.message) from None
    except requests.exceptions.SSLError as exc:
        raise TokenError("tls", f"TLS with {peer} failed: {_root(exc)}") from None
    except requests.exceptions.Timeout:
        raise TokenError(
            "timeout",
            f"{peer[0].upper()}{peer[1:]}{what} did not answer in time: no complete answer "
            f"within {timeout:g} s.",
        ) from None
    except requests.exceptions.ConnectionError as exc:
        raise TokenError("unreachable", f"Could not reach {peer}: {_root(exc)}") from None
    except msal.exceptions.MsalServiceError as exc:
        raise TokenError("service", f"Entra ID answered with a server error: {exc}") from None


def _refusal(
    kind: str, answer: dict[str, Any], default: str, *, error_codes: list[int] | None = None
) -> TokenError:
    """An OAuth error answer (Entra's ``error``, ``error_description``, codes, ids) as a
    ``TokenError``: the token request's and the discovery's alike."""
    return TokenError(
        kind,
        str(answer.get("error_description") or answer.get("error") or default),
        error=str(answer.get("error", "")),
        error_codes=error_codes
        if error_codes is not None
        else [int(code) for code in answer.get("error_codes") or []],
        correlation_id=str(answer.get("correlation_id", "")),
        trace_id=str(answer.get("trace_id", "")),
    )


def _root(exc: BaseException) -> str:
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return str(exc)


@dataclass(frozen=True)
class Tenant:
    """What an authority's OIDC discovery says of a tenant."""

    tenant_id: str
    token_endpoint: str
    # Entra's name for the cloud the tenant lives in ("microsoftonline.com", ...), if said.
    cloud_instance: str = ""


def discover_tenant(*, authority: str, timeout: float) -> Tenant:
    """Ask ``{authority}/v2.0/.well-known/openid-configuration`` which tenant this is.

    No secret is sent. The answer is read only from the authority's own host (the same
    pinning as the token request), and its token endpoint must be on that host too.
    """
    url = f"{authority}/v2.0/.well-known/openid-configuration"
    session = _pinned_session(authority, timeout=timeout)
    try:
        with (
            _translated("the sign-in host", timeout=timeout, what=" (OIDC discovery)"),
            exchange_deadline(timeout),
        ):
            response = session.get(url)
    finally:
        session.close()
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TokenError(
            "service" if response.status_code >= 500 else "refused",
            f"The sign-in host answered {response.status_code} without OIDC metadata.",
        )
    if response.status_code != 200 or "error" in body:
        raise _refusal(
            "service" if response.status_code >= 500 else "refused",
            body,
            str(response.status_code),
            error_codes=[int(code) for code in body.get("error_codes") or []]
            or [int(code) for code in _AADSTS_CODE.findall(str(body.get("error_description")))],
        )
    token_endpoint = str(body.get("token_endpoint", ""))
    if origin_of(token_endpoint) != session.origin or not token_endpoint.startswith("https://"):
        raise TokenError(
            "foreign_host",
            "The metadata names a token endpoint on another host "
            f"({urlsplit(token_endpoint).netloc}); the client secret is only ever sent to "
            f"{session.origin[0]}.",
        )
    tenant_id = microsoft.tenant_id_in(token_endpoint, str(body.get("issuer", "")))
    if not tenant_id:
        raise TokenError("refused", "The metadata does not name the tenant's ID.")
    return Tenant(
        tenant_id=tenant_id.lower(),
        token_endpoint=token_endpoint,
        cloud_instance=str(body.get("cloud_instance_name", "")),
    )
