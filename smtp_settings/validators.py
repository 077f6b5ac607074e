"""Field rules for the Manage SMTP form, as plain validators (no network access)."""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from smtp_settings.mail import microsoft

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SHARED_TENANTS = frozenset({"common", "organizations", "consumers"})
_PLACEHOLDER = re.compile(r"[<>{}\[\]]|^(tenant|tenant_id|tenantid|directory_id)$", re.IGNORECASE)
# Control characters, and the Unicode line and paragraph separators some mail code treats
# as line breaks.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
# The unquoted local part of RFC 5321 (dot-atom): nothing that changes the SMTP command.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def is_domain(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    return (
        len(value) <= 253
        and len(labels) >= 2
        and all(_HOST_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )


def validate_host(value: str) -> None:
    """A bare host name or IP address the transport can connect to: no scheme, port, path,
    spaces, brackets, and no name made of digits only."""
    if "://" in value:
        raise ValidationError(
            "Enter the host name only, without a scheme such as smtp://: for example "
            "smtp.office365.com.",
            code="scheme",
        )
    if any(ch.isspace() for ch in value):
        raise ValidationError("A host name cannot contain spaces.", code="spaces")
    if "/" in value:
        raise ValidationError("Enter the host name only, without a path.", code="path")
    if not value.isascii():
        raise ValidationError(
            "Enter the host name in its ASCII form (an international name as xn--…).",
            code="not_ascii",
        )
    if value.startswith("[") or value.endswith("]"):
        raise ValidationError(
            "Enter an IPv6 address without brackets, for example 2001:db8::25.", code="brackets"
        )
    if "%" in value:
        raise ValidationError("Enter the address without a zone (the part after %).", code="zone")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
            raise ValidationError(
                f"{value} is not an address a server can be reached at.", code="not_unicast"
            )
        return
    if "%" in value:
        raise ValidationError("Enter the address without a zone (the part after %).", code="zone")
    if ":" in value:
        raise ValidationError(
            "Enter the port in the Port field, not after the host name.", code="port"
        )
    labels = value.rstrip(".").split(".")
    if (
        len(value) > 253
        or not all(_HOST_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationError(
            "This is not a valid host name or IP address. Use letters, digits, hyphens and "
            "dots, for example smtp.office365.com.",
            code="invalid_host",
        )


def validate_no_control_characters(value: str) -> None:
    """Line breaks in an address would let it add headers to every message sent."""
    if _CONTROL_CHARS.search(value):
        raise ValidationError(
            "An e-mail address cannot contain line breaks or other control characters.",
            code="control_characters",
        )


def validate_ascii_credential(value: str) -> None:
    """SMTP AUTH LOGIN/PLAIN as the console speaks it carries ASCII user names and passwords."""
    if not value.isascii() or _CONTROL_CHARS.search(value):
        raise ValidationError(
            "Only ASCII letters, digits and symbols can be sent here (no accents, no line "
            "breaks): choose a password or user name without them.",
            code="not_ascii",
        )


def validate_smtp_address(value: str) -> None:
    """An address that goes into MAIL FROM / RCPT TO as it is: ASCII, no quoted local part."""
    validate_no_control_characters(value)
    if not value.isascii():
        raise ValidationError(
            "Use the address's ASCII form: an international domain as xn--… (punycode); "
            "local parts with accents are not supported.",
            code="not_ascii",
        )
    local, _, _ = value.rpartition("@")
    if local and not _LOCAL_PART.match(local):
        raise ValidationError(
            "The part before @ may hold letters, digits and . ! # $ % & ' * + / = ? ^ _ ` { | } "
            "~ -, without quotes, spaces or leading, trailing or doubled dots.",
            code="local_part",
        )


def validate_client_id(value: str) -> None:
    if not microsoft.is_guid(value):
        raise ValidationError(
            "The Application (client) ID is a GUID such as 00000000-0000-0000-0000-000000000000; "
            "copy it from the app registration's Overview page in Entra ID.",
            code="not_guid",
        )


def validate_tenant(value: str) -> None:
    """A Directory (tenant) ID: a GUID, or a verified domain of the tenant."""
    if value.lower() in _SHARED_TENANTS:
        raise ValidationError(
            f'"{value}" is a shared endpoint, not your tenant. The client credentials flow '
            "needs your own Directory (tenant) ID, from the app registration's Overview page.",
            code="shared_tenant",
        )
    if _PLACEHOLDER.search(value):
        raise ValidationError(
            f'"{value}" is still a placeholder. Put your Directory (tenant) ID in its place, '
            "from the app registration's Overview page.",
            code="placeholder",
        )
    if not (microsoft.is_guid(value) or is_domain(value)):
        raise ValidationError(
            "A Directory (tenant) ID is a GUID (or a domain of the tenant such as "
            "contoso.onmicrosoft.com); copy it from the app registration's Overview page.",
            code="invalid_tenant",
        )


def validate_token_endpoint(value: str) -> None:
    parts = urlsplit(value)
    if parts.username or parts.password or "@" in parts.netloc:
        raise ValidationError(
            "The token endpoint cannot carry a user name or password before the host.",
            code="userinfo",
        )
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValidationError(
            "The token endpoint has no query (?…) or fragment (#…): the client secret goes in "
            "the request body, nowhere else.",
            code="query",
        )
    if parts.scheme != "https":
        raise ValidationError(
            "The token endpoint must be an https:// URL: the client secret is sent to it.",
            code="not_https",
        )
    if not parts.hostname:
        raise ValidationError("Enter a full URL, including the host.", code="no_host")
    if "\\" in value or any(ch.isspace() for ch in parts.netloc) or not value.isascii():
        raise ValidationError(
            "The token endpoint is a plain https:// URL: no spaces, backslashes or accents.",
            code="characters",
        )
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(
            "The port in the token endpoint is not a number from 1 to 65535.", code="port"
        ) from None
    path_tenant = microsoft.tenant_in_path(parts.path)
    if path_tenant is None:
        raise ValidationError(
            "A token endpoint's address ends in /<TENANT_ID>/oauth2/v2.0/token.", code="shape"
        )
    if parts.hostname.lower() not in microsoft.LOGIN_HOSTS:
        if not _extra_authority_allowed(parts.hostname.lower(), port):
            raise ValidationError(
                f"{parts.netloc} is not a Microsoft login host, and the client secret would be "
                "sent there. An operator can allow it with SMTP_OAUTH_AUTHORITY_HOSTS.",
                code="host_not_allowed",
            )
        if any(ch.isspace() for ch in value):
            raise ValidationError("The token endpoint cannot contain spaces.", code="spaces")
        # An allowed host (a sovereign cloud's proxy, the sandbox) stands in for Microsoft's:
        # the same tenant rule, so "common", a placeholder or any text is not saved there.
        validate_tenant(path_tenant)
        return
    tenant = microsoft.tenant_from_token_endpoint(value)
    if tenant is None or port not in (None, 443):
        raise ValidationError(
            f"A Microsoft token endpoint has the form https://{parts.hostname}/<TENANT_ID>"
            "/oauth2/v2.0/token, with your Directory (tenant) ID in place of <TENANT_ID>.",
            code="shape",
        )
    validate_tenant(tenant)


def _extra_authority_allowed(host: str, port: int | None) -> bool:
    allowed = settings.SMTP_OAUTH_AUTHORITY_HOSTS
    return host in allowed or (port is not None and f"{host}:{port}" in allowed)


def validate_scopes(value: str) -> None:
    if _CONTROL_CHARS.search(value) or "\t" in value:
        raise ValidationError(
            "Separate scopes with spaces; line breaks and control characters are not allowed.",
            code="control",
        )
    if any(ch in value for ch in "<>\"'`\\{}") or not value.isascii():
        raise ValidationError(
            "A scope is a URL such as https://outlook.office365.com/.default: no quotes, "
            "angle brackets or other markup.",
            code="markup",
        )
    scopes = value.split()
    if not scopes:
        raise ValidationError("Enter at least one scope.", code="empty")
    for scope in scopes:
        if scope.endswith("/.default") and len(scope) == len("/.default"):
            raise ValidationError(
                '"/.default" needs its resource in front: https://outlook.office365.com/.default.',
                code="no_resource",
            )
        if not scope.endswith("/.default"):
            raise ValidationError(
                f'"{scope}" does not end in /.default. With client credentials Entra ID only '
                "accepts <resource>/.default (it answers AADSTS1002012 otherwise); for "
                "Exchange Online use https://outlook.office365.com/.default.",
                code="not_default",
            )


MAX_ALERT_RECIPIENTS = 20


def parse_addresses(value: str) -> list[str]:
    """A list typed as "a@x, b@y" (commas, semicolons or line breaks), each checked."""
    addresses: list[str] = []
    for part in re.split(r"[,;\r\n]+", value or ""):
        address = part.strip()
        if not address:
            continue
        if _CONTROL_CHARS.search(address) or any(ch.isspace() for ch in address):
            raise ValidationError(
                f'"{address}" is not one address: separate addresses with commas.', code="list"
            )
        try:
            validate_email(address)
            validate_smtp_address(address)
        except ValidationError:
            raise ValidationError(
                f'"{address}" is not a valid e-mail address.', code="invalid_address"
            ) from None
        if address.lower() not in (known.lower() for known in addresses):
            addresses.append(address)
    if len(addresses) > MAX_ALERT_RECIPIENTS:
        raise ValidationError(
            f"At most {MAX_ALERT_RECIPIENTS} addresses; use a distribution list for more.",
            code="too_many",
        )
    return addresses


def validate_expiration_date(value: date) -> None:
    """A date Entra ID could have given: its secrets last at most two years."""
    if value.year < 2000 or value.year > 2100:
        raise ValidationError(
            "Enter the secret's Expires date as Entra ID shows it (a year between 2000 and 2100).",
            code="range",
        )
