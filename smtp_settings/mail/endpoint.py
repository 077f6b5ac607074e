"""Settings values -> where to connect and how to authenticate: one path for Validate and sending.

``MailSettings`` holds the plain values of one configuration (saved, or typed into the
form and not yet saved) with its secret in clear, in memory only. The functions below
turn it into the transport's ``SmtpEndpoint`` and ``Credentials``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from smtp_settings.mail import oauth
from smtp_settings.mail.transport import Credentials, SmtpEndpoint

# The transports a configuration may choose (mail/transports.py).
SMTP = "smtp"
GRAPH = "graph"
OAUTH2 = "oauth2"
BASIC = "basic"
NONE = "none"
IMPLICIT_TLS_PORT = 465


# Entra's answers that refuse the credential itself (not the app, tenant or consent): the
# other credential, if one is registered, may still work. 7000215 invalid secret, 7000222
# expired secret, 700027 certificate key not found / bad signature / expired, 50012
# invalid client assertion.
CREDENTIAL_REFUSED_CODES = frozenset({7000215, 7000222, 700027, 50012})
# After the credential in use was refused and the other one worked, the other one is asked
# first for this long: not one refused request per message.
REFUSED_MEMORY_SECONDS = 300.0


@dataclass(frozen=True)
class MailSettings:
    smtp_server: str
    port: int
    use_ssl_tls: bool
    sender_email: str
    auth_type: str = OAUTH2
    client_id: str = ""
    token_endpoint: str = ""
    scopes: str = ""
    username: str = ""
    use_sender_email: bool = True
    transport: str = SMTP
    # Graph only: its host[:port] ("" for the cloud's own, read from the token endpoint).
    graph_host: str = ""
    # The credential in use: the client secret's value or MSAL's certificate credential
    # (OAuth 2.0), or the password (Basic).
    secret: oauth.Credential = field(default="", repr=False)
    # How pages and runs name it (never any of its material).
    credential_name: str = ""
    # The other credential (OAuth 2.0): used when Entra refuses the one in use as a
    # credential, and told through ``on_fallback`` (the one refused, the error).
    fallback: oauth.Credential | None = field(default=None, repr=False)
    fallback_name: str = ""
    on_fallback: Callable[[MailSettings, oauth.TokenError], None] | None = field(
        default=None, repr=False, compare=False
    )

    @classmethod
    def from_values(
        cls, values: Mapping[str, Any], *, secret: oauth.Credential = "", **more: Any
    ) -> MailSettings:
        """From a mapping of field names (a run's candidate, a settings row's values)."""
        known = {f.name for f in fields(cls)} - {"secret", *more}
        kept = {name: values[name] for name in known if values.get(name) is not None}
        kept["port"] = int(kept["port"])
        return cls(**kept, secret=secret, **more)


def implicit_tls_for(*, port: int, use_tls: bool) -> bool:
    """Port 465 with SSL/TLS means TLS from the first byte; every other port uses STARTTLS."""
    return use_tls and port == IMPLICIT_TLS_PORT


def smtp_endpoint(settings: MailSettings, *, timeout: float) -> SmtpEndpoint:
    return SmtpEndpoint(
        host=settings.smtp_server,
        port=settings.port,
        use_tls=settings.use_ssl_tls,
        timeout=timeout,
        implicit_tls=implicit_tls_for(port=settings.port, use_tls=settings.use_ssl_tls),
    )


def split_scopes(value: str) -> list[str]:
    return value.split()


def acquire_token(
    settings: MailSettings,
    *,
    timeout: float,
    fresh: bool = False,
    scopes: list[str] | None = None,
) -> oauth.Token:
    """The OAuth 2.0 token for these settings (MSAL's cache unless ``fresh``): the one
    way every part of the console gets one; for their Scopes unless ``scopes`` says
    another resource's (Graph's, whatever Scopes holds).

    When Entra refuses the credential in use as a credential and the settings carry
    another one, the token comes with the other one and ``on_fallback`` is told.
    """
    first, second = settings.secret, settings.fallback
    if second is not None and _refused_lately(settings, first):
        first, second = second, first
    try:
        return _token(settings, first, timeout=timeout, fresh=fresh, scopes=scopes)
    except oauth.TokenError as error:
        if second is None or not set(error.error_codes) & CREDENTIAL_REFUSED_CODES:
            raise
        try:
            token = _token(settings, second, timeout=timeout, fresh=fresh, scopes=scopes)
        except oauth.TokenError:
            raise error from None
        _refused_note(settings, first)
        if settings.on_fallback is not None and first is settings.secret:
            settings.on_fallback(settings, error)
        return token


def _token(
    settings: MailSettings,
    credential: oauth.Credential,
    *,
    timeout: float,
    fresh: bool,
    scopes: list[str] | None,
) -> oauth.Token:
    return oauth.acquire_token(
        token_endpoint=settings.token_endpoint,
        client_id=settings.client_id,
        client_secret=credential,
        scopes=scopes if scopes is not None else split_scopes(settings.scopes),
        timeout=timeout,
        fresh=fresh,
    )


def _refused_lately(settings: MailSettings, credential: oauth.Credential) -> bool:
    key = oauth.app_key(settings.token_endpoint, settings.client_id, credential)
    return oauth.refused_within(key, seconds=REFUSED_MEMORY_SECONDS)


def _refused_note(settings: MailSettings, credential: oauth.Credential) -> None:
    oauth.refused_note(oauth.app_key(settings.token_endpoint, settings.client_id, credential))


def forget_token(settings: MailSettings) -> None:
    """Drop the cached tokens of these settings: the server refused one."""
    for credential in (settings.secret, settings.fallback):
        if credential is not None:
            oauth.forget(
                token_endpoint=settings.token_endpoint,
                client_id=settings.client_id,
                client_secret=credential,
            )


def credentials(
    settings: MailSettings, *, mailbox: str, token: oauth.Token | None
) -> Credentials | None:
    """What to authenticate with, or ``None`` for no authentication.

    XOAUTH2 names ``mailbox``: the mailbox the app's token acts for.
    """
    if settings.auth_type == OAUTH2:
        if token is None:
            raise ValueError("OAuth 2.0 needs a token")
        return Credentials(OAUTH2, mailbox, token.access_token)
    if settings.auth_type == BASIC:
        return Credentials(BASIC, settings.username, str(settings.secret))
    return None
