"""The state of mail at a glance: for the pages, the banners and the health endpoint.

Nothing here is secret or personal: it is fit for ``/healthz`` as much as for the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from smtp_settings.crypto import UnreadableSecret
from smtp_settings.models import (
    SECRET_FIELD_BY_AUTH_TYPE,
    AuthType,
    DeliveryState,
    MailHealthCheck,
    RunScope,
    SmtpSettings,
    ValidationRun,
    WorkerHeartbeat,
)
from smtp_settings.outbox import service as outbox

SOON_DAYS = 30
URGENT_DAYS = 7


@dataclass(frozen=True)
class SecretExpiry:
    expires: date
    days_left: int
    alert_on: bool

    @property
    def urgency(self) -> str:
        """ok, soon (within 30 days), urgent (within 7) or expired: the page's colour."""
        if self.days_left < 0:
            return "expired"
        if self.days_left <= URGENT_DAYS:
            return "urgent"
        return "soon" if self.days_left <= SOON_DAYS else "ok"


def secret_expiry(row: SmtpSettings, *, today: date | None = None) -> SecretExpiry | None:
    if not row.is_stored or row.auth_type != AuthType.OAUTH2 or not row.secret_expiration_date:
        return None
    days = (row.secret_expiration_date - (today or timezone.localdate())).days
    return SecretExpiry(row.secret_expiration_date, days, row.secret_expiration_alert)


class MailSnapshot:
    """What one request knows of mail, each piece read once: the status block and the
    banners of the same page share it."""

    def __init__(self, settings_row: SmtpSettings | None = None) -> None:
        self._row = settings_row

    @cached_property
    def row(self) -> SmtpSettings:
        return self._row if self._row is not None else SmtpSettings.load()

    @cached_property
    def health(self) -> MailHealthCheck | None:
        return MailHealthCheck.objects.first()

    @cached_property
    def _outbox(self) -> tuple[dict[str, int], datetime | None]:
        return outbox.outbox_counts_and_last_sent_today()

    @property
    def counts(self) -> dict[str, int]:
        return self._outbox[0]

    @cached_property
    def last_sent(self) -> datetime | None:
        # The counts' query knows the day's last message; older ones cost one more query,
        # and only on the pages that show it.
        return self._outbox[1] or outbox.outbox_last_sent()

    @cached_property
    def held(self) -> dict[str, Any] | None:
        return outbox.outbox_held(count=self.counts[DeliveryState.HELD])


def for_request(request: HttpRequest, *, settings_row: SmtpSettings | None = None) -> MailSnapshot:
    """The request's snapshot: made once, by the view (with the row it loaded) or the banners."""
    snapshot = getattr(request, "_mail_snapshot", None)
    if snapshot is None:
        snapshot = MailSnapshot(settings_row)
        request._mail_snapshot = snapshot  # type: ignore[attr-defined]
    return snapshot


def mail_status(*, snapshot: MailSnapshot) -> dict[str, Any]:
    """Everything the status block shows."""
    return {
        "secret": secret_expiry(snapshot.row),
        "health": snapshot.health,
        "validation": ValidationRun.objects.filter(finished_at__isnull=False, scope=RunScope.FULL)
        .select_related("requested_by")
        .order_by("-finished_at")
        .first(),
        "last_sent": snapshot.last_sent,
        "outbox": snapshot.counts,
    }


@dataclass(frozen=True)
class Banner:
    key: str
    text: str


def banners(snapshot: MailSnapshot | None = None) -> list[Banner]:
    """What every Administration page warns administrators of, most urgent first."""
    snapshot = snapshot or MailSnapshot()
    found: list[Banner] = []
    row = snapshot.row
    secret_field = SECRET_FIELD_BY_AUTH_TYPE.get(row.auth_type) if row.is_stored else None
    if secret_field and isinstance(getattr(row, secret_field), UnreadableSecret):
        found.append(
            Banner(
                "secret-unreadable",
                "The stored secret cannot be decrypted with the keys in SEI_ENCRYPTION_KEYS, "
                "so no mail goes out. Restore the key it was saved with, or enter the secret "
                "again in Manage SMTP.",
            )
        )
    expiry = secret_expiry(row)
    if expiry and expiry.urgency == "expired":
        found.append(
            Banner(
                "secret-expired",
                f"The client secret expired on {expiry.expires.isoformat()}: Entra ID refuses it, "
                "so no mail goes out. Create a new secret in Entra ID and save it in Manage SMTP.",
            )
        )
    elif expiry and expiry.urgency == "urgent":
        days = "today" if expiry.days_left == 0 else f"in {expiry.days_left} days"
        found.append(
            Banner(
                "secret-expiring",
                f"The client secret expires {days} ({expiry.expires.isoformat()}). Create a new "
                "secret in Entra ID and save it in Manage SMTP before then.",
            )
        )
    health = snapshot.health
    if health is not None and not health.ok:
        checked = timezone.localtime(health.checked_at)
        found.append(
            Banner(
                "health-failed",
                f"The last health check failed ({checked:%Y-%m-%d %H:%M}): "
                f"{health.cause or health.detail}",
            )
        )
    held = snapshot.held
    if held:
        count = held["count"]
        found.append(
            Banner(
                "mail-held",
                f"{count} message{'s' if count != 1 else ''} held: "
                f"{held['cause'] or held['last_error']} Nothing is lost: "
                f"{'it goes' if count == 1 else 'they go'} out once working settings are "
                "saved in Manage SMTP.",
            )
        )
    return found


def heartbeat_age(role: str, *, now: datetime | None = None) -> float | None:
    """Seconds since a process of this role (worker or beat) last reported; None if never."""
    seen = WorkerHeartbeat.objects.filter(role=role).aggregate(at=Max("seen_at"))["at"]
    if seen is None:
        return None
    return ((now or timezone.now()) - seen).total_seconds()


def heartbeat_stale_after() -> float:
    """A heartbeat older than three beats (and at least three minutes) means the process is gone."""
    return max(3 * settings.SEI_HEARTBEAT_SECONDS, 180.0)
