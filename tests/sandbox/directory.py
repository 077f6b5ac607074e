"""What the stand-ins know of the tenant: its apps, secrets, consent, service principals, mailboxes.

Entra and Exchange share one Directory, as the real services share one tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

EXCHANGE_RESOURCE = "https://outlook.office365.com"
GRAPH_RESOURCE = "https://graph.microsoft.com"
SEND_AS_APP = "SMTP.SendAsApp"


@dataclass
class App:
    client_id: str
    # secret value -> expired?
    secrets: dict[str, bool] = field(default_factory=dict)
    # secret value -> its Secret ID (a GUID), as Certificates & secrets lists them side by side.
    secret_ids: dict[str, str] = field(default_factory=dict)
    # Application permissions granted with admin consent, per resource.
    roles: dict[str, list[str]] = field(default_factory=lambda: {EXCHANGE_RESOURCE: [SEND_AS_APP]})
    enabled: bool = True
    blocked_by_conditional_access: bool = False
    # The Enterprise application's object id: the token's oid claim.
    service_principal_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    # Certificates uploaded under Certificates & secrets: SHA-1 thumbprint (hex) -> PEM.
    certificates: dict[str, str] = field(default_factory=dict)

    def add_certificate(self, upload: str | bytes) -> str:
        """Upload a certificate's public part, PEM or DER (the .cer Entra's "Upload
        certificate" takes); returns its thumbprint as Entra shows it."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.serialization import Encoding

        data = upload.encode("ascii") if isinstance(upload, str) else upload
        certificate = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_certificate(data)
        )
        thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
        self.certificates[thumbprint] = certificate.public_bytes(Encoding.PEM).decode("ascii")
        return thumbprint

    def add_secret(self, value: str, *, expired: bool = False) -> str:
        """A new client secret; returns its Secret ID."""
        self.secrets[value] = expired
        self.secret_ids[value] = str(uuid.uuid4())
        return self.secret_ids[value]


@dataclass
class Mailbox:
    address: str
    # Service principal object ids holding FullAccess.
    full_access: set[str] = field(default_factory=set)
    # Other addresses this mailbox may put in From:
    send_as: set[str] = field(default_factory=set)
    smtp_auth_disabled: bool = False
    throttled: bool = False
    # Exchange can refuse the From: header after DATA even when the envelope passed.
    header_send_as_denied: bool = False
    quota_exceeded: bool = False
    full: bool = False
    # Not reachable through Graph (inactive, or hosted on-premises): MailboxNotEnabledForRESTAPI.
    graph_disabled: bool = False
    received: list[bytes] = field(default_factory=list)


@dataclass
class Tenant:
    tenant_id: str
    domains: list[str] = field(default_factory=list)
    apps: dict[str, App] = field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    # Service principals registered in Exchange Online with New-ServicePrincipal.
    exchange_service_principals: set[str] = field(default_factory=set)
    smtp_auth_disabled: bool = False
    # Apps limited to some mailboxes for Graph (RBAC for Applications / access policies):
    # service principal object id -> the mailboxes it may send as. Absent: every mailbox.
    graph_scopes: dict[str, set[str]] = field(default_factory=dict)
    # Service principals Exchange Online's RBAC for Applications grants "Application
    # Mail.Send" (New-ManagementRoleAssignment): Graph lets them send without the role in
    # their token, within their scope above.
    graph_rbac_grants: set[str] = field(default_factory=set)

    def add_app(self, client_id: str, secret: str, **kwargs: Any) -> App:
        app = App(client_id=client_id, **kwargs)
        app.add_secret(secret)
        self.apps[client_id] = app
        return app

    def add_mailbox(self, address: str, *, full_access_for: App | None = None) -> Mailbox:
        mailbox = Mailbox(address=address.lower())
        if full_access_for is not None:
            mailbox.full_access.add(full_access_for.service_principal_id)
        self.mailboxes[mailbox.address] = mailbox
        return mailbox


@dataclass
class Directory:
    tenants: dict[str, Tenant] = field(default_factory=dict)

    def add_tenant(self, tenant_id: str, *domains: str) -> Tenant:
        tenant = Tenant(tenant_id=tenant_id, domains=list(domains))
        self.tenants[tenant_id] = tenant
        return tenant

    def find(self, segment: str) -> Tenant | None:
        for tenant in self.tenants.values():
            if segment.lower() in {tenant.tenant_id.lower(), *map(str.lower, tenant.domains)}:
                return tenant
        return None

    def mailbox(self, address: str) -> tuple[Tenant, Mailbox] | None:
        for tenant in self.tenants.values():
            box = tenant.mailboxes.get(address.lower())
            if box is not None:
                return tenant, box
        return None
