"""Development-only secrets, generated once and kept in a git-ignored file.

A restart must be able to decrypt what the previous run saved, so the keys are
written to disk rather than regenerated. Outside development nothing here is
used: a missing secret stops start-up instead.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def load_or_create(path: Path) -> dict[str, str]:
    """Return the development secrets stored at ``path``, creating them on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        content = (
            f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"SEI_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
        )
        try:
            # O_EXCL: web, worker and beat may start at the same instant; only one writes.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(content)
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip():
            values[name.strip()] = value.strip()
    return values
