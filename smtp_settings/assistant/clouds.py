"""The clouds an administrator can pick in the setup assistant: Microsoft's own
(``mail.microsoft.CLOUDS``), then each sign-in host the operator allowed."""

from __future__ import annotations

import dataclasses

from django.conf import settings

from smtp_settings.mail import microsoft
from smtp_settings.mail.microsoft import Cloud

OPERATOR_HOST_PREFIX = "host:"
SMTP_PORT = 587
DEFAULT = microsoft.GLOBAL


def cloud_choices() -> list[tuple[str, str]]:
    """Microsoft's clouds, then each sign-in host the operator allowed
    (SMTP_OAUTH_AUTHORITY_HOSTS: a sovereign proxy, the sandbox)."""
    choices = [(cloud.key, cloud.name) for cloud in microsoft.CLOUDS]
    choices += [
        (f"{OPERATOR_HOST_PREFIX}{host}", f"Sign-in host allowed by the operator: {host}")
        for host in settings.SMTP_OAUTH_AUTHORITY_HOSTS
    ]
    return choices


def cloud_for(key: str) -> Cloud:
    for cloud in microsoft.CLOUDS:
        if cloud.key == key:
            return cloud
    if key.startswith(OPERATOR_HOST_PREFIX):
        host = key.removeprefix(OPERATOR_HOST_PREFIX)
        if host in settings.SMTP_OAUTH_AUTHORITY_HOSTS:
            # A host ("host[:port]") standing in for the worldwide cloud's sign-in.
            return dataclasses.replace(
                DEFAULT, key=key, name=host, login_host=host, login_aliases=()
            )
    return DEFAULT


def cloud_key_for_host(host: str) -> str:
    """The choice whose sign-in host is ``host`` ("host[:port]"); the default if none."""
    for key, _ in cloud_choices():
        if cloud_for(key).login_host.lower() == host.lower():
            return key
    return DEFAULT.key


def token_endpoint(cloud: Cloud, tenant: str) -> str:
    return microsoft.token_endpoint(cloud.login_host, tenant)
