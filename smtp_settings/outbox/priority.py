"""Which due message goes first: one-time links (a password reset, an invitation) before the
rest, then the oldest due, then the oldest queued (held messages released together fall due
at the same instant: the order they were queued in).

A drain claims a batch ahead; a one-time link queued after that would wait for the batch.
So its acceptance leaves a mark in the shared cache, and a drain that sees a new mark
between two messages puts the rest of its batch back and claims again. The mark is only a
hint to look again: the rows' priorities decide, and a lost mark costs at most a batch.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from post_office.models import Email

from smtp_settings.links import ONE_TIME_LINK_HEADER, headers_mark
from smtp_settings.models import Delivery, DeliveryPriority

logger = logging.getLogger(__name__)

# Its value changes each time one-time-link mail is queued.
MARK_KEY = "outbox:one-time-link-queued"
_KEEP_SECONDS = 24 * 3600

# The claim order (``QuerySet.order_by``).
CLAIM_ORDER = ("priority", "next_attempt_at", "pk")


def carries_one_time_link(headers: dict[str, Any] | None) -> bool:
    return headers_mark(headers, ONE_TIME_LINK_HEADER)


def priority_of(email: Email) -> int:
    if carries_one_time_link(email.headers):
        return DeliveryPriority.ONE_TIME_LINK
    return DeliveryPriority.NORMAL


def mark_when_committed(priorities: Iterable[int]) -> None:
    """After the commit (a drain that looks sooner would not find the row yet), if any of
    the messages just accepted goes before the normal ones."""
    if min(priorities, default=DeliveryPriority.NORMAL) >= DeliveryPriority.NORMAL:
        return

    def mark() -> None:
        try:
            cache.set(MARK_KEY, uuid.uuid4().hex, _KEEP_SECONDS)
        except Exception as error:  # the cache away: the message is stored, and goes in order
            logger.warning("Outbox: one-time link queued without its mark (%s)", error)

    transaction.on_commit(mark)


def current_mark() -> str | None:
    return cache.get(MARK_KEY)


class LinksQueued:
    """A drain's view of the mark: as last read between two messages, and as it was when the
    drain claimed its batch."""

    def __init__(self) -> None:
        self.seen = current_mark()
        self.at_claim = self.seen

    def outrank(self, batch: Iterable[Delivery]) -> bool:
        """Whether one-time-link mail was queued since ``batch`` was claimed and the batch
        holds other mail (a batch of one-time links only goes first as it is)."""
        return self.seen != self.at_claim and any(
            delivery.priority != DeliveryPriority.ONE_TIME_LINK for delivery in batch
        )

    def claiming(self) -> None:
        self.at_claim = self.seen
