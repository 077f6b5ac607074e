"""Project-wide housekeeping tasks, scheduled by beat."""

from __future__ import annotations

from importlib import import_module

from celery import shared_task
from django.conf import settings

from accounts.throttle import throttle_purge


@shared_task(ignore_result=True)
def clear_expired_sessions() -> None:
    """Expired sessions, and rate-limit windows that have ended, would otherwise stay in the
    database for ever."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    throttle_purge()
