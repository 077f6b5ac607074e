"""What the base layout needs on every page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def session(request: HttpRequest) -> dict[str, Any]:
    return {"session_idle_seconds": settings.SEI_SESSION_IDLE_MINUTES * 60}
