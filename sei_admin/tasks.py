"""Project-wide housekeeping tasks, scheduled by beat."""

from __future__ import annotations

from importlib import import_module

from celery import shared_task
from django.conf import settings


@shared_task(ignore_result=True)
def clear_expired_sessions() -> None:
    """Expired sessions would otherwise stay in the database for ever."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
