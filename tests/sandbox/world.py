"""A ready tenant: one app with SMTP.SendAsApp and Microsoft Graph's Mail.Send, admin consent
given, its service principal registered in Exchange with FullAccess on the sender mailbox
(so SMTP and Graph both work out of the box). Tests start from this and break one thing at
a time."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import certifi

from .directory import GRAPH_RESOURCE, App, Directory, Mailbox, Tenant
from .entra import EntraStandIn
from .exchange import ExchangeStandIn
from .graph import MAIL_SEND, GraphStandIn
from .pki import SandboxPKI

TENANT_ID = "3b1f5a20-7c41-4e2a-9d55-5a9d1e000001"
TENANT_DOMAIN = "sandbox.example"
CLIENT_ID = "6a4e0c52-91d3-4f7b-8e1a-5a9d1e000002"
CLIENT_SECRET = "sandbox~Secret.Value-0001"
SENDER = "notifications@sandbox.example"
# A client secret's Expires date within Entra's 24 months, whenever the tests run.
SECRET_EXPIRES = (date.today() + timedelta(days=365)).isoformat()


@dataclass
class Sandbox:
    entra_port: int = 0
    smtp_port: int = 0
    folder: Path | None = None
    graph_port: int = 0

    def __post_init__(self) -> None:
        # A folder of its own unless given one; removed again by stop().
        self._own_folder = self.folder is None
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="sei-sandbox-"))
        self.pki = SandboxPKI()
        self.directory = Directory()
        self.tenant: Tenant = self.directory.add_tenant(TENANT_ID, TENANT_DOMAIN)
        self.app: App = self.tenant.add_app(CLIENT_ID, CLIENT_SECRET)
        # Graph's application permission too: Send through Microsoft Graph works at once.
        self.app.roles[GRAPH_RESOURCE] = [MAIL_SEND]
        self.tenant.exchange_service_principals.add(self.app.service_principal_id)
        self.mailbox: Mailbox = self.tenant.add_mailbox(SENDER, full_access_for=self.app)
        self.entra = EntraStandIn(self.directory, self.pki.server_context(), self.entra_port)
        self.exchange = ExchangeStandIn(
            self.directory, self.entra.public_key, self.pki.server_context(), self.smtp_port
        )
        self.graph = GraphStandIn(
            self.directory,
            self.entra.public_key,
            self.pki.server_context(),
            self.exchange,
            self.graph_port,
        )
        # What the console trusts: the usual public CAs plus the sandbox's own.
        self.ca_bundle = self.folder / "ca-bundle.pem"
        self.ca_bundle.write_text(
            Path(certifi.where()).read_text() + "\n" + self.pki.ca.cert_pem.bytes().decode()
        )

    def start(self) -> Sandbox:
        self.entra.start()
        self.exchange.start()
        self.graph.start()
        return self

    def stop(self) -> None:
        self.graph.stop()
        self.exchange.stop()
        self.entra.stop()
        if self._own_folder and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def authority_host(self) -> str:
        return f"127.0.0.1:{self.entra.port}"

    def form_values(self) -> dict[str, str]:
        """What an administrator types into Manage SMTP to use this sandbox."""
        return {
            "smtp_server": "127.0.0.1",
            "sender_email": SENDER,
            "port": str(self.exchange.port),
            "auth_type": "oauth2",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "secret_expiration_alert": "on",
            "secret_expiration_date": SECRET_EXPIRES,
            "token_endpoint": self.entra.token_endpoint(TENANT_ID),
            "scopes": "https://outlook.office365.com/.default",
            "use_ssl_tls": "on",
            "use_sender_email": "on",
        }

    def graph_form_values(self) -> dict[str, str]:
        """The same through Microsoft Graph: no SMTP server, port, TLS or scopes to type."""
        values = {**self.form_values(), "transport": "graph", "graph_host": self.graph.host}
        for name in ("smtp_server", "port", "use_ssl_tls", "scopes"):
            values.pop(name)
        return values
