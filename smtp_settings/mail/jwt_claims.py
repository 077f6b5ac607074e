"""Read an access token's claims without verifying it: for diagnosis only.

Microsoft calls its access tokens opaque; when one is not a readable JWT the
answer is "could not read", never a failure.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def read_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None
