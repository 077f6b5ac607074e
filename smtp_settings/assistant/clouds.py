"""The Microsoft clouds an administrator can set up, and what each one's values are."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from smtp_settings.models import EXCHANGE_ONLINE_SCOPE

OPERATOR_HOST_PREFIX = "host:"
SMTP_PORT = 587


@dataclass(frozen=True)
class Cloud:
    key: str
    label: str
    # Where tokens come from ("host" or "host:port"), always over https.
    login_host: str
    scope: str
    smtp_server: str


CLOUDS: tuple[Cloud, ...] = (
    Cloud(
        "global",
        "Microsoft 365 worldwide (also GCC)",
        "login.microsoftonline.com",
        EXCHANGE_ONLINE_SCOPE,
        "smtp.office365.com",
    ),
    Cloud(
        "usgov",
        "Microsoft 365 US Government (GCC High, DoD)",
        "login.microsoftonline.us",
        "https://outlook.office365.us/.default",
        "smtp.office365.us",
    ),
    Cloud(
        "china",
        "Microsoft 365 operated by 21Vianet (China)",
        "login.partner.microsoftonline.cn",
        "https://partner.outlook.cn/.default",
        "smtp.partner.outlook.cn",
    ),
)
DEFAULT = CLOUDS[0]


def cloud_choices() -> list[tuple[str, str]]:
    """Microsoft's clouds, then each sign-in host the operator allowed
    (SMTP_OAUTH_AUTHORITY_HOSTS: a sovereign proxy, the sandbox)."""
    choices = [(cloud.key, cloud.label) for cloud in CLOUDS]
    choices += [
        (f"{OPERATOR_HOST_PREFIX}{host}", f"Sign-in host allowed by the operator: {host}")
        for host in settings.SMTP_OAUTH_AUTHORITY_HOSTS
    ]
    return choices


def cloud_for(key: str) -> Cloud:
    for cloud in CLOUDS:
        if cloud.key == key:
            return cloud
    if key.startswith(OPERATOR_HOST_PREFIX):
        host = key.removeprefix(OPERATOR_HOST_PREFIX)
        if host in settings.SMTP_OAUTH_AUTHORITY_HOSTS:
            return Cloud(key, host, host, EXCHANGE_ONLINE_SCOPE, DEFAULT.smtp_server)
    return DEFAULT


def cloud_key_for_host(host: str) -> str:
    """The choice whose sign-in host is ``host`` ("host[:port]"); the default if none."""
    for key, _ in cloud_choices():
        if cloud_for(key).login_host.lower() == host.lower():
            return key
    return DEFAULT.key


def token_endpoint(cloud: Cloud, tenant: str) -> str:
    return f"https://{cloud.login_host}/{tenant}/oauth2/v2.0/token"
