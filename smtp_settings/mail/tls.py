"""The one place TLS trust is decided, for SMTP and the token endpoint alike: verification
is always on.

The system trust store is used, plus the CA files named by the standard
``SSL_CERT_FILE`` and ``REQUESTS_CA_BUNDLE`` variables (a corporate or test CA).
No setting turns verification off.
"""

from __future__ import annotations

import functools
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
    """A verifying client context, TLS 1.2 or newer (Exchange Online refuses older).

    Built once per set of CA files and kept while none of them changes on disk: reading
    a CA bundle costs milliseconds at every connection otherwise.
    """
    system = ssl.get_default_verify_paths().openssl_cafile
    files = [path for path in [system, *extra_ca_files()] if path and os.path.isfile(path)]
    return _context_for(tuple((path, os.stat(path).st_mtime_ns) for path in files))


@functools.lru_cache(maxsize=8)
def _context_for(files: tuple[tuple[str, int], ...]) -> ssl.SSLContext:
    # No default paths: OpenSSL would read SSL_CERT_FILE *instead of* the system store.
    # The system store comes first in ``files`` by its built-in path; the variables add.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for path, _ in files:
        context.load_verify_locations(cafile=path)
    return context
