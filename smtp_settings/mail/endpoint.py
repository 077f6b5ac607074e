"""Settings values -> where to connect and how to authenticate: one path for Validate and sending.

``MailSettings`` holds the plain values of one configuration (saved, or typed into the
form and not yet saved) with its secret in clear, in memory only. The functions below
turn it into the transport's ``SmtpEndpoint`` and ``Credentials``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    # The client secret (OAuth 2.0) or the password (Basic): whichever the type uses.
    secret: str = field(default="", repr=False)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], *, secret: str = "") -> MailSettings:
        """From a mapping of field names (a run's candidate, a settings row's values)."""
        known = {f.name for f in fields(cls)} - {"secret"}
        kept = {name: values[name] for name in known if values.get(name) is not None}
        kept["port"] = int(kept["port"])
        return cls(**kept, secret=secret)


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
    """The OAuth 2.0 token for these settings (MSAL's cache unless ``fresh``); for their
    Scopes unless ``scopes`` says another resource's (Graph's, whatever Scopes holds)."""
    return oauth.acquire_token(
        token_endpoint=settings.token_endpoint,
        client_id=settings.client_id,
        client_secret=settings.secret,
        scopes=scopes if scopes is not None else split_scopes(settings.scopes),
        timeout=timeout,
        fresh=fresh,
    )


def forget_token(settings: MailSettings) -> None:
    """Drop the cached token of these settings: the server refused it."""
    oauth.forget(
        token_endpoint=settings.token_endpoint,
        client_id=settings.client_id,
        client_secret=settings.secret,
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
        return Credentials(BASIC, settings.username, settings.secret)
    return None
