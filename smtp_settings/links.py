"""Absolute links to the console, for mail and for addresses handed to others (Entra's
consent redirect): always built from ``SEI_CONSOLE_URL``, never from the request.

A request's Host header is whatever the client sent; with a permissive
``DJANGO_ALLOWED_HOSTS``, a reset requested with ``Host: evil.example`` would mail a link
to evil.example, and its one-time token with it.
"""

from __future__ import annotations

from django.conf import settings

# Set by whoever mails a one-time link to choose a password (a reset, an invitation): the
# outbox page shows that it is there, not its text, since anyone reading the text could use
# the link before its owner. Delivery sends the message as it is.
ONE_TIME_LINK_HEADER = "X-SEI-One-Time-Link"
# Set on the console's own alerts to administrators (reminders, health, the outbox's): the
# outbox tells them apart, so that an alert that failed for good raises no alert e-mail about
# itself (no loop) and a stale one can be withdrawn.
ALERT_HEADER = "X-SEI-Alert"


def headers_mark(headers: dict | None, header: str) -> bool:
    """Whether a stored message's headers carry ``header: yes`` (names in any case)."""
    return any(
        str(name).lower() == header.lower() and str(value).strip().lower() == "yes"
        for name, value in (headers or {}).items()
    )


def console_url(path: str) -> str:
    """The console's address followed by ``path`` (a ``reverse()`` result)."""
    return settings.SEI_CONSOLE_URL.rstrip("/") + "/" + path.lstrip("/")
