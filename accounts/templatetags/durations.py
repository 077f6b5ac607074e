"""Durations in words for the pages: django-axes gives the lock-out as a timedelta (and as an
ISO 8601 string, "PT15M", which is not for people)."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


def _unit(count: int, name: str) -> str:
    return f"{count} {name}{'' if count == 1 else 's'}"


@register.filter
def in_words(value: timedelta | None) -> str:
    """``timedelta(minutes=15)`` -> "15 minutes"; "1 hour 30 minutes"; "" for nothing."""
    if not isinstance(value, timedelta):
        return ""
    seconds = max(0, int(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(_unit(hours, "hour"))
    if minutes:
        parts.append(_unit(minutes, "minute"))
    if seconds and not hours:
        parts.append(_unit(seconds, "second"))
    return " ".join(parts)
