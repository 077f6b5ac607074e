"""Microsoft's facts, written once: its clouds, the shape of a token endpoint, the GUID rule.

Validators, Validate's steps, the token check, the setup assistant and the Manage SMTP
page's script all read them here. Plain data and pure functions: nothing of Django, so
every layer may import it, the mail engine included.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date
from typing import TypeVar
from urllib.parse import urlsplit

_Day = TypeVar("_Day", bound=date)  # a date or a datetime

# The path every v2 token endpoint ends in, after the tenant.
TOKEN_PATH_SUFFIX = "/oauth2/v2.0/token"  # noqa: S105  (a URL path, not a secret)
_TOKEN_PATH_SEGMENTS = TOKEN_PATH_SUFFIX.strip("/").split("/")

# A GUID as Entra writes tenant, application and secret IDs (the pattern without anchors,
# so the page's script can take it as data).
GUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID = re.compile(rf"^{GUID_PATTERN}$")
# What the page's script takes for a typed tenant (a GUID or something domain-shaped) before
# it fills the token endpoint in; the server's rule (validators.validate_tenant) decides.
TENANT_HINT_PATTERN = rf"^({GUID_PATTERN}|[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+)$"

# The permission Exchange Online's SMTP AUTH asks a token for.
SEND_AS_APP_ROLE = "SMTP.SendAsApp"
# The Microsoft Graph application permission sendMail asks a token for.
MAIL_SEND_ROLE = "Mail.Send"
# Microsoft Graph's application id: tokens may name it instead of its URL as audience.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Entra ID lets a client secret last at most this long (its portal offers up to 24 months).
SECRET_LONGEST_MONTHS = 24


def months_later(day: _Day, months: int) -> _Day:
    """The same day ``months`` calendar months later, or the month's last day if shorter."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return day.replace(year=year, month=month, day=min(day.day, monthrange(year, month)[1]))


def secret_expires_by(today: date) -> date:
    """The latest Expires date a client secret created today can have."""
    return months_later(today, SECRET_LONGEST_MONTHS)


# Exchange Online's application id: tokens may name it instead of its URL as audience.
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"


@dataclass(frozen=True)
class Cloud:
    """One Microsoft cloud: where tokens come from and what they are for."""

    key: str
    name: str
    # Where tokens come from (a host, always over https), then the other names Entra
    # answers to in the same cloud.
    login_host: str
    exchange_resource: str
    graph_resource: str
    smtp_host: str
    login_aliases: tuple[str, ...] = ()

    @property
    def exchange_scope(self) -> str:
        return f"{self.exchange_resource}/.default"

    @property
    def graph_host(self) -> str:
        return urlsplit(self.graph_resource).hostname or ""

    @property
    def login_hosts(self) -> tuple[str, ...]:
        return (self.login_host, *self.login_aliases)


GLOBAL = Cloud(
    key="global",
    name="Microsoft 365 worldwide (also GCC)",
    login_host="login.microsoftonline.com",
    exchange_resource="https://outlook.office365.com",
    graph_resource="https://graph.microsoft.com",
    smtp_host="smtp.office365.com",
    login_aliases=("login.microsoft.com", "login.windows.net"),
)
US_GOVERNMENT = Cloud(
    key="usgov",
    name="Microsoft 365 US Government (GCC High, DoD)",
    login_host="login.microsoftonline.us",
    exchange_resource="https://outlook.office365.us",
    graph_resource="https://graph.microsoft.us",
    smtp_host="smtp.office365.us",
)
CHINA = Cloud(
    key="china",
    name="Microsoft 365 operated by 21Vianet (China)",
    login_host="login.partner.microsoftonline.cn",
    exchange_resource="https://partner.outlook.cn",
    graph_resource="https://microsoftgraph.chinacloudapi.cn",
    smtp_host="smtp.partner.outlook.cn",
    login_aliases=("login.chinacloudapi.cn",),
)
CLOUDS: tuple[Cloud, ...] = (GLOBAL, US_GOVERNMENT, CHINA)

# Microsoft Cloud Deutschland closed in 2021; its login host is still taken for Microsoft's
# (a secret sent there goes to Microsoft), though no cloud of the list signs in there.
_RETIRED_LOGIN_HOSTS = ("login.microsoftonline.de",)
LOGIN_HOSTS = frozenset(
    {host for cloud in CLOUDS for host in cloud.login_hosts} | set(_RETIRED_LOGIN_HOSTS)
)
# Exchange Online's SMTP client submission hosts, one per cloud.
SMTP_HOSTS = frozenset(cloud.smtp_host for cloud in CLOUDS)
# Microsoft Graph's own hosts, one per cloud (the access token may always go there).
GRAPH_HOSTS = frozenset(cloud.graph_host for cloud in CLOUDS)
# Every audience an Exchange Online token may carry.
EXCHANGE_AUDIENCES = (EXCHANGE_APP_ID, *(cloud.exchange_resource for cloud in CLOUDS))


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def cloud_for_exchange_resource(resource: str) -> Cloud | None:
    """The cloud whose Exchange Online is ``resource`` (a scope's resource, no slash)."""
    for cloud in CLOUDS:
        if cloud.exchange_resource == resource:
            return cloud
    return None


def cloud_for_graph_host(host: str) -> Cloud | None:
    """The Microsoft cloud whose Graph is at ``host``, if one is."""
    for cloud in CLOUDS:
        if host.lower() == cloud.graph_host:
            return cloud
    return None


def cloud_for_login_host(host: str) -> Cloud | None:
    """The Microsoft cloud that signs in at ``host`` (any of its names), if one does."""
    for cloud in CLOUDS:
        if host.lower() in cloud.login_hosts:
            return cloud
    return None


def login_host_for_instance(cloud_instance: str) -> str:
    """The login host of the cloud OIDC discovery names ("microsoftonline.us"), if Microsoft's."""
    host = f"login.{cloud_instance}" if cloud_instance else ""
    return host if host in LOGIN_HOSTS else ""


def token_endpoint(host: str, tenant: str) -> str:
    """``https://<host>/<tenant>/oauth2/v2.0/token`` (``host`` may carry a port)."""
    return f"https://{host}/{tenant}{TOKEN_PATH_SUFFIX}"


def tenant_from_token_endpoint(url: str) -> str | None:
    """The tenant segment of a token endpoint URL, if the URL has that shape."""
    segments = [segment for segment in urlsplit(url).path.split("/") if segment]
    if len(segments) == 4 and segments[1:] == _TOKEN_PATH_SEGMENTS:
        return segments[0]
    return None


def tenant_in_path(path: str) -> str | None:
    """The tenant of a path that is exactly ``/<tenant>/oauth2/v2.0/token`` (the tenant may
    be empty: the caller's tenant rule says what is wrong with it), else None."""
    segments = path.split("/")
    if len(segments) == 5 and segments[0] == "" and segments[2:] == _TOKEN_PATH_SEGMENTS:
        return segments[1]
    return None


def authority_from_token_endpoint(url: str) -> str | None:
    """``https://host/<tenant>/oauth2/v2.0/token`` -> ``https://host/<tenant>``; None when the
    URL does not end in the token path."""
    if not url.endswith(TOKEN_PATH_SUFFIX):
        return None
    return url[: -len(TOKEN_PATH_SUFFIX)]


def tenant_id_in(*urls: str) -> str:
    """The first URL whose first path segment is a GUID gives the tenant's ID ("" if none):
    Entra names it there in both the token endpoint and the issuer, whichever name (ID or
    domain) its metadata was asked for."""
    for url in urls:
        segments = [segment for segment in urlsplit(url).path.split("/") if segment]
        if segments and is_guid(segments[0]):
            return segments[0]
    return ""
