"""Small filters for how values read on the pages."""

from __future__ import annotations

import re
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince

register = template.Library()

# Before "@" and after each "." or "-": where a reader expects an address to continue.
_BREAK = re.compile(r"(?=@)|(?<=[.\-])")


@register.filter
def address_breaks(value: object) -> SafeString:
    """An address that may wrap only between its parts (``<wbr>``), never mid-word."""
    # Safe: every part is escaped; only the <wbr> between them is markup.
    return mark_safe(  # noqa: S308
        "<wbr>".join(conditional_escape(part) for part in _BREAK.split(str(value or "")))
    )


@register.filter
def ago(value: datetime | None) -> str:
    """How long ago, as people say it: "just now" under a minute, never "0 minutes ago"."""
    if value is None:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"
