"""The sandbox's own certificate authority and the server certificates it signs."""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import trustme

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass
class SandboxPKI:
    ca: trustme.CA = field(default_factory=trustme.CA)

    def server_context(self, *names: str, expired: bool = False) -> ssl.SSLContext:
        """A server-side context whose certificate names ``names`` (loopback by default)."""
        kwargs = {}
        if expired:
            kwargs["not_after"] = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            kwargs["not_before"] = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        cert = self.ca.issue_cert(*(names or LOOPBACK_NAMES), **kwargs)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        return context

    def write_ca(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.ca.cert_pem.write_to_path(str(path))
        return path
