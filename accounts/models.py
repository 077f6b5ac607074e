"""The accounts app's own rows: only the request counters of its rate limits (users,
groups and second factors are Django's and django-otp's)."""

from __future__ import annotations

from django.db import models


class RequestCount(models.Model):
    """How many requests one key (e.g. a client address asking for password resets) made in
    the window that ends at ``window_ends``.

    In the database rather than the cache: the file-based cache (one machine, no Redis)
    has no atomic add or increment, so simultaneous requests read the same count and all
    pass."""

    key = models.CharField(max_length=200, primary_key=True)
    window_ends = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.window_ends:%Y-%m-%d %H:%M}"
