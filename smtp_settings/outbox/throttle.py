"""Exchange's per-mailbox limits, shared by every worker through the database.

Messages: a mailbox's next send slot is spaced 60/``SMTP_MAX_MESSAGES_PER_MINUTE``
seconds after the last one, so a burst drains at the allowed rate; a server's Retry-After
moves the next slot to its end. Connections: at most ``SMTP_MAX_CONNECTIONS`` unexpired
leases per mailbox; a lease lasts ``SMTP_OUTBOX_CLAIM_SECONDS`` and its drain renews it
while its process lives, so a killed worker's connection slot frees within seconds. The
mailbox's throttle row, locked, serialises both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from smtp_settings.models import MailboxLease, MailboxThrottle


def _locked_row(mailbox: str) -> MailboxThrottle:
    row = MailboxThrottle.objects.select_for_update().filter(mailbox=mailbox).first()
    if row is None:
        MailboxThrottle.objects.get_or_create(mailbox=mailbox)
        row = MailboxThrottle.objects.select_for_update().get(mailbox=mailbox)
    return row


# How far behind the first slot a batch's further slots may be reserved.
_AHEAD_SECONDS = 0.1


@dataclass(frozen=True)
class Slot:
    at: datetime
    reserved: bool


@dataclass(frozen=True)
class Slots:
    # Reserved send times, in order (none when the next is beyond the wait).
    times: list[datetime]
    # When the first slot not reserved is.
    next_at: datetime


@transaction.atomic
def reserve_slots(mailbox: str, *, count: int, max_wait: float) -> Slots:
    """Up to ``count`` of this mailbox's next send slots, the first within ``max_wait``
    seconds (a caller that will not wait must not use one up) and the others within a tenth
    of a second after it: one transaction for a drain's batch when the limit allows."""
    row = _locked_row(mailbox)
    now = timezone.now()
    at = max(now, row.next_slot_at)
    spacing = timedelta(seconds=60.0 / settings.SMTP_MAX_MESSAGES_PER_MINUTE)
    times: list[datetime] = []
    while len(times) < count and (at - now).total_seconds() <= max_wait:
        # Slots reserved ahead are used up if the drain stops early: only those close
        # behind the first (a raised limit's), never seconds of Exchange's 30 a minute.
        if times and (at - times[0]).total_seconds() > _AHEAD_SECONDS:
            break
        times.append(at)
        at += spacing
    if times:
        row.next_slot_at = at
        row.save(update_fields=["next_slot_at"])
    return Slots(times, next_at=at)


@transaction.atomic
def defer_mailbox(mailbox: str, seconds: float) -> datetime:
    """The server said to wait (a 429's Retry-After): no send slot of this mailbox, in any
    worker, before ``seconds`` from now. Returns that time."""
    row = _locked_row(mailbox)
    until = timezone.now() + timedelta(seconds=seconds)
    if until > row.next_slot_at:
        row.next_slot_at = until
        row.save(update_fields=["next_slot_at"])
    return until


def _lease_length() -> timedelta:
    return timedelta(seconds=settings.SMTP_OUTBOX_CLAIM_SECONDS)


@transaction.atomic
def acquire_lease(mailbox: str, holder: str) -> int | None:
    """A lease for one more connection to this mailbox, or None while all are taken."""
    _locked_row(mailbox)
    now = timezone.now()
    MailboxLease.objects.filter(mailbox=mailbox, expires_at__lt=now).delete()
    if MailboxLease.objects.filter(mailbox=mailbox).count() >= settings.SMTP_MAX_CONNECTIONS:
        return None
    return MailboxLease.objects.create(
        mailbox=mailbox, holder=holder, expires_at=now + _lease_length()
    ).pk


def renew_lease(lease_id: int) -> None:
    renew_leases([lease_id])


def renew_leases(lease_ids: list[int]) -> None:
    if lease_ids:
        MailboxLease.objects.filter(pk__in=lease_ids).update(
            expires_at=timezone.now() + _lease_length()
        )


def leases_held(mailbox: str) -> int:
    """Connections to this mailbox whose holders still renew them."""
    return MailboxLease.objects.filter(mailbox=mailbox, expires_at__gte=timezone.now()).count()


def release_leases(lease_ids: list[int]) -> None:
    if lease_ids:
        MailboxLease.objects.filter(pk__in=lease_ids).delete()
