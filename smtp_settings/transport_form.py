"""Manage SMTP's transport choice: SMTP, or Microsoft Graph (issue 20).

With Graph the SMTP-only fields (server, port, SSL/TLS) and Scopes are hidden: neither
required nor changed, and so never recorded as the administrator's change. They keep their
stored values rather than being cleared: switching back to SMTP finds them again, and a
stored secret bound to them (credentials never follow the settings elsewhere) stays usable.
Graph's scope is not a choice: it is fixed per cloud (``graph_scopes``, shown as a fact).
Client ID, credential, tenant/token endpoint, sender and Use sender email mean the same.
Graph signs in with OAuth 2.0 only. Graph Host is blank for the cloud of the token
endpoint, else Microsoft's or an entry of SMTP_GRAPH_HOSTS: the access token goes there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from smtp_settings.mail import microsoft
from smtp_settings.models import AuthType, Transport

SMTP_ONLY_FIELDS = ("smtp_server", "port", "use_ssl_tls")
# What the page hides with Graph: SMTP's own fields, and Scopes (Graph's is fixed per cloud).
HIDDEN_WITH_GRAPH = (*SMTP_ONLY_FIELDS, "scopes")


def graph_scopes() -> list[tuple[str, str]]:
    """Microsoft Graph's scope in each cloud, as the page states it: (cloud, scope)."""
    return [(cloud.name, f"{cloud.graph_resource}/.default") for cloud in microsoft.CLOUDS]


def validate_graph_host(value: str) -> None:
    """A host[:port], Microsoft Graph's own (port 443) or allowed by SMTP_GRAPH_HOSTS."""
    if not value:
        return
    if any(ch in value for ch in "/\\@?#") or not value.isascii() or value != value.strip():
        raise ValidationError(
            "Enter only the host (and :port if not 443), e.g. graph.microsoft.com: no https://, "
            "path or spaces.",
            code="shape",
        )
    parts = urlsplit(f"https://{value}")
    try:
        port = parts.port
    except ValueError:
        raise ValidationError("The port is not a number from 1 to 65535.", code="port") from None
    host = (parts.hostname or "").lower()
    if host in microsoft.GRAPH_HOSTS and port in (None, 443):
        return
    allowed = settings.SMTP_GRAPH_HOSTS
    if host in allowed or (port is not None and f"{host}:{port}" in allowed):
        return
    raise ValidationError(
        f"{value} is not a Microsoft Graph host, and the access token would be sent there. "
        "An operator can allow it with SMTP_GRAPH_HOSTS.",
        code="host_not_allowed",
    )


class TransportFields(forms.Form):
    """The transport choice and Graph Host, and what choosing Graph means for the rest."""

    transport = forms.ChoiceField(
        label="Send through",
        choices=Transport.choices,
        required=False,
        widget=forms.RadioSelect,
        help_text="SMTP AUTH, or Microsoft Graph's sendMail with the Mail.Send application "
        "permission (works where SMTP AUTH is switched off for the tenant).",
    )
    graph_host = forms.CharField(
        label="Graph Host",
        max_length=260,
        required=False,
        validators=[validate_graph_host],
        help_text="Leave blank for the Microsoft Graph of your cloud (graph.microsoft.com, "
        "graph.microsoft.us, microsoftgraph.chinacloudapi.cn: read from the Token Endpoint).",
    )

    @property
    def graph_scopes(self) -> list[tuple[str, str]]:
        return graph_scopes()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cleaned["transport"] = cleaned.get("transport") or Transport.SMTP
        if cleaned["transport"] != Transport.GRAPH:
            return cleaned
        for name in HIDDEN_WITH_GRAPH:
            # Hidden with Graph: neither required nor changed (the stored value stays).
            self.errors.pop(name, None)
            cleaned.pop(name, None)
        if cleaned.get("auth_type") not in (None, "", AuthType.OAUTH2):
            self.add_error("auth_type", "Microsoft Graph signs in with OAuth 2.0 only.")
        # Without Graph Host the cloud is read from the token endpoint; where it cannot be,
        # every send would fail, and neither Validate without an address nor the health
        # check would see it: said here, beside the field.
        endpoint = urlsplit(str(cleaned.get("token_endpoint") or "")).hostname or ""
        if (
            endpoint
            and not cleaned.get("graph_host")
            and "graph_host" not in self.errors
            and microsoft.cloud_for_login_host(endpoint.lower()) is None
        ):
            self.add_error("graph_host", _graph_host_needed(endpoint.lower()))
        return cleaned


def _graph_host_needed(endpoint_host: str) -> str:
    allowed = list(settings.SMTP_GRAPH_HOSTS)
    example = f" ({', '.join(allowed)} is allowed here)" if allowed else ""
    return (
        f"The Token Endpoint is on {endpoint_host}, not a Microsoft login host, so the "
        f"console cannot tell which Microsoft Graph to send to: enter Graph Host{example}."
    )
