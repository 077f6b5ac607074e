"""The one place TLS trust is decided: verification is always on.

The system trust store is used, plus the CA files named by the standard
``SSL_CERT_FILE`` and ``REQUESTS_CA_BUNDLE`` variables (a corporate or test CA).
No setting turns verification off.
"""

from __future__ import annotations

import os
import ssl

CA_FILE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def extra_ca_files() -> list[str]:
    files = []
    for name in CA_FILE_VARIABLES:
        path = os.environ.get(name, "")
        if path and os.path.isfile(path) and path not in files:
            files.append(path)
    return files


def client_context() -> ssl.SSLContext:
    """A verifying client context, TLS 1.2 or newer (Exchange Online refuses older)."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for path in extra_ca_files():
        context.load_verify_locations(cafile=path)
    return context


def requests_verify() -> str | bool:
    """What ``requests`` (and so MSAL) verifies HTTPS against.

    ``requests`` takes one CA file: ``REQUESTS_CA_BUNDLE``, else ``SSL_CERT_FILE``
    (so one variable serves SMTP and the token endpoint), else the system's bundle.
    """
    files = extra_ca_files()  # in CA_FILE_VARIABLES order, so REQUESTS_CA_BUNDLE comes last
    if files:
        return files[-1]
    default = ssl.get_default_verify_paths().openssl_cafile
    return default if os.path.isfile(default) else True
