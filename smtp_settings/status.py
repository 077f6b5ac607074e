"""The state of mail at a glance: for the pages, the banners and the health endpoint.

Nothing here is secret or personal: it is fit for ``/healthz`` as much as for the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, JSONField, Max, Model, QuerySet, Subquery
from django.db.models.functions import Coalesce, JSONObject
from django.http import HttpRequest
from django.utils import timezone

from smtp_settings.crypto import UnreadableSecret
from smtp_settings.models import (
    SECRET_FIELD_BY_AUTH_TYPE,
    AuthType,
    Delivery,
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


def _latest(queryset: QuerySet[Any], fields: list[str]) -> Subquery:
    """The first row of ``queryset`` as one JSON value: a whole row in one column."""
    return Subquery(
        queryset.values(row=JSONObject(**{name: name for name in fields}))[:1],
        output_field=JSONField(),
    )


def _from_json(model: type[Model], data: dict[str, Any] | None) -> Any:
    """A model instance back from ``_latest``'s JSON (dates arrive as text)."""
    if not data:
        return None
    values = {}
    for field in model._meta.concrete_fields:
        if field.name in data:
            value = field.to_python(data[field.name])
            if isinstance(value, datetime) and timezone.is_naive(value):
                value = timezone.make_aware(value, UTC)  # SQLite keeps UTC without its zone
            values[field.attname] = value
    return model(**values)


def _count(queryset: QuerySet[Any]) -> Coalesce:
    return Coalesce(
        Subquery(queryset.order_by().values("state").annotate(n=Count("pk")).values("n")),
        0,
    )


_HEALTH_FIELDS = [field.name for field in MailHealthCheck._meta.concrete_fields]
_VERDICT_FIELDS = ["id", "status", "summary", "created_at", "finished_at", "requested_by"]


def _settings_with_status() -> SmtpSettings | None:
    """The stored settings row with everything the status block and the banners show,
    in one query however long the history: each part is an indexed "latest" or a count
    of unsent mail (and of the day's sent mail)."""
    since = timezone.now() - outbox.SENT_COUNT_WINDOW
    deliveries = Delivery.objects.all()
    counts = {
        f"_count_{state}": _count(deliveries.filter(state=state))
        for state in DeliveryState.values
        if state != DeliveryState.SENT
    }
    counts[f"_count_{DeliveryState.SENT}"] = _count(
        deliveries.filter(state=DeliveryState.SENT, sent_at__gte=since)
    )
    return (
        SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK)
        .annotate(
            _health=_latest(MailHealthCheck.objects.order_by("-checked_at", "-pk"), _HEALTH_FIELDS),
            _verdict=_latest(
                ValidationRun.objects.filter(
                    finished_at__isnull=False, scope=RunScope.FULL
                ).order_by("-finished_at"),
                [*_VERDICT_FIELDS, "requested_by__username"],
            ),
            _worker=_latest(
                WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.WORKER).order_by("-seen_at"),
                ["worker", "role", "seen_at"],
            ),
            _last_sent=Subquery(
                deliveries.filter(state=DeliveryState.SENT)
                .order_by("-sent_at")
                .values("sent_at")[:1]
            ),
            **counts,
        )
        .first()
    )


class MailSnapshot:
    """What one request knows of mail, each piece read once: the status block and the
    banners of the same page share it. With the settings stored, one query reads it all;
    before that, each piece is read when asked for."""

    def __init__(self) -> None:
        row = _settings_with_status()
        self.row = row or SmtpSettings.load()
        if row is None:
            return
        # Filled in from the one query: the cached properties below are not asked.
        self.__dict__["health"] = _from_json(MailHealthCheck, row._health)
        verdict = _from_json(ValidationRun, row._verdict)
        if verdict is not None and verdict.requested_by_id:
            verdict.requested_by = get_user_model()(
                pk=verdict.requested_by_id, username=row._verdict.get("requested_by__username")
            )
        self.__dict__["verdict"] = verdict
        self.__dict__["worker"] = _from_json(WorkerHeartbeat, row._worker)
        self.__dict__["last_sent"] = row._last_sent
        self.__dict__["counts"] = {
            state: getattr(row, f"_count_{state}") for state in DeliveryState.values
        }

    @cached_property
    def health(self) -> MailHealthCheck | None:
        return MailHealthCheck.objects.first()

    @cached_property
    def verdict(self) -> ValidationRun | None:
        return (
            ValidationRun.objects.filter(finished_at__isnull=False, scope=RunScope.FULL)
            .select_related("requested_by")
            .order_by("-finished_at")
            .first()
        )

    @cached_property
    def worker(self) -> WorkerHeartbeat | None:
        return (
            WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.WORKER).order_by("-seen_at").first()
        )

    @cached_property
    def counts(self) -> dict[str, int]:
        return outbox.outbox_counts()

    @cached_property
    def last_sent(self) -> datetime | None:
        return outbox.outbox_last_sent()

    @cached_property
    def held(self) -> dict[str, Any] | None:
        return outbox.outbox_held(count=self.counts[DeliveryState.HELD])


def for_request(request: HttpRequest) -> MailSnapshot:
    """The request's snapshot: made once, by the view or by the banners."""
    snapshot = getattr(request, "_mail_snapshot", None)
    if snapshot is None:
        snapshot = MailSnapshot()
        request._mail_snapshot = snapshot  # type: ignore[attr-defined]
    return snapshot


def mail_status(*, snapshot: MailSnapshot) -> dict[str, Any]:
    """Everything the status block shows."""
    return {
        "secret": secret_expiry(snapshot.row),
        "health": snapshot.health,
        "validation": snapshot.verdict,
        "last_sent": snapshot.last_sent,
        "outbox": snapshot.counts,
    }


# A banner's severity, most urgent first: mail cannot leave, mail will stop soon, to know.
ERROR, WARNING, INFO = "error", "warning", "info"
_SEVERITY_ORDER = (ERROR, WARNING, INFO)
_AADSTS = re.compile(r"AADSTS\d+")


@dataclass
class Banner:
    key: str
    text: str
    severity: str = ERROR
    # Where the administrator fixes it: a URL name of smtp_settings.
    place: str = "manage"
    # What went wrong, so that one cause gives one banner: a diagnosis key or its text.
    cause: str = ""

    @property
    def place_label(self) -> str:
        return {"manage": "Manage SMTP", "outbox": "Outbox"}[self.place]


def _cause_of(diagnosis: str, text: str) -> str:
    if "SEI_ENCRYPTION_KEYS" in text:
        return "secret-unreadable"
    return diagnosis or text


def _fold(found: list[Banner], banner: Banner, *, also: str = "") -> None:
    """Add ``banner``, or, when an earlier one names the same cause (or the same AADSTS
    code), add only ``also`` to that one: the administrator reads each cause once."""
    codes = set(_AADSTS.findall(banner.text))
    for earlier in found:
        if earlier.cause == banner.cause or codes & set(_AADSTS.findall(earlier.text)):
            if also:
                earlier.text = f"{earlier.text} {also}"
            return
    found.append(banner)


def banners(snapshot: MailSnapshot | None = None) -> list[Banner]:
    """What every Administration page warns administrators of: one banner per cause, those
    that stop mail first."""
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
                cause="secret-unreadable",
            )
        )
    expiry = secret_expiry(row)
    if expiry and expiry.urgency == "expired":
        found.append(
            Banner(
                "secret-expired",
                f"The client secret expired on {expiry.expires.isoformat()} (AADSTS7000222: "
                "Entra ID refuses it), so no mail goes out. Create a new secret in Entra ID "
                "and save it in Manage SMTP.",
                cause="aadsts_secret_expired",
            )
        )
    elif expiry and expiry.urgency in ("urgent", "soon"):
        days = "today" if expiry.days_left == 0 else f"in {expiry.days_left} days"
        found.append(
            Banner(
                "secret-expiring",
                f"The client secret expires {days} ({expiry.expires.isoformat()}). Create a new "
                "secret in Entra ID and save it in Manage SMTP before then.",
                # Within the week mail will stop soon; within the month it is to know.
                severity=WARNING if expiry.urgency == "urgent" else INFO,
                cause="secret-expiring",
            )
        )
    health = snapshot.health
    if health is not None and not health.ok:
        checked = timezone.localtime(health.checked_at)
        explanation = health.cause or health.detail
        _fold(
            found,
            Banner(
                "health-failed",
                f"The last health check failed ({checked:%Y-%m-%d %H:%M}): {explanation}",
                cause=_cause_of(health.diagnosis, explanation),
            ),
        )
    held = snapshot.held
    if held:
        count = held["count"]
        messages = f"{count} message{'s' if count != 1 else ''}"
        explanation = held["cause"] or held["last_error"]
        _fold(
            found,
            Banner(
                "mail-held",
                f"{messages} held: {explanation} Nothing is lost: "
                f"{'it goes' if count == 1 else 'they go'} out once working settings are "
                "saved in Manage SMTP.",
                place="outbox",
                cause=_cause_of(held.get("diagnosis", ""), explanation),
            ),
            also=f"{messages} wait{'s' if count == 1 else ''} in the Outbox until then.",
        )
    found.sort(key=lambda banner: _SEVERITY_ORDER.index(banner.severity))
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
