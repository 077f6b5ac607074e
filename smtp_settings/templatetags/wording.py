"""Small filters for how values read on the pages."""

from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

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
