"""Rate limits on requests that cost something (each password reset sends mail): one
counter row per key and window, incremented atomically on every database and whatever
the cache is."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import RequestCount


def throttle_hit(*, key: str, window_seconds: int) -> int:
    """Count one more request for ``key``; returns the count in the current window (1 for
    the first). The row's lock (PostgreSQL) or the immediate transaction (SQLite) makes
    concurrent hits count one by one."""
    now = timezone.now()
    with transaction.atomic():
        RequestCount.objects.filter(key=key, window_ends__lte=now).delete()
        RequestCount.objects.get_or_create(
            key=key, defaults={"window_ends": now + timedelta(seconds=window_seconds)}
        )
        RequestCount.objects.filter(key=key).update(count=F("count") + 1)
        return RequestCount.objects.values_list("count", flat=True).get(key=key)


def throttle_purge() -> int:
    """Forget windows that have ended (beat, hourly): one row per client address would
    otherwise stay for ever."""
    return RequestCount.objects.filter(window_ends__lte=timezone.now()).delete()[0]
