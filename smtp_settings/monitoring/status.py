"""The state of mail at a glance: for the pages, the banners and the health endpoint.

Nothing here is secret or personal: it is fit for ``/healthz`` as much as for the page.
"""

from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, JSONField, Model, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, JSONObject
from django.http import HttpRequest
from django.utils import timezone

from smtp_settings import outbox
from smtp_settings.credentials.model import Credential, Role
from smtp_settings.credentials.model import Kind as CredentialKind
from smtp_settings.crypto import UnreadableSecret
from smtp_settings.fields import EncryptedTextField
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
from smtp_settings.monitoring import health_check
from smtp_settings.monitoring.banner import ERROR, INFO, WARNING, Banner
from smtp_settings.monitoring.fallback_banners import fallback_banners, held_by_both

SOON_DAYS = 30
URGENT_DAYS = 7


@dataclass(frozen=True)
class SecretExpiry:
    expires: date
    days_left: int
    alert_on: bool
    # "client secret" or "certificate"; the next credential's name once it passed Validate.
    what: str = "client secret"
    next_ready: str = ""

    @property
    def urgency(self) -> str:
        """ok, soon (within 30 days), urgent (within 7) or expired: the page's colour."""
        if self.days_left < 0:
            return "expired"
        if self.days_left <= URGENT_DAYS:
            return "urgent"
        return "soon" if self.days_left <= SOON_DAYS else "ok"


def secret_expiry(row: SmtpSettings, *, today: date | None = None) -> SecretExpiry | None:
    """When the credential in use expires: a certificate's date read from it, a secret's as
    typed (Secret Expiration Date)."""
    if not row.is_stored or row.auth_type != AuthType.OAUTH2:
        return None
    in_use = row.credential(AuthType.OAUTH2)
    certificate = in_use is not None and in_use.kind == CredentialKind.CERTIFICATE
    expires = row.secret_expiration_date
    if in_use is not None and certificate:
        expires = in_use.expires_on
    if not expires:
        return None
    days = (expires - (today or timezone.localdate())).days
    what = "certificate" if certificate else "client secret"
    upcoming = row.credential(AuthType.OAUTH2, Role.NEXT)
    ready = upcoming.name if upcoming is not None and upcoming.check_passed else ""
    return SecretExpiry(expires, days, row.secret_expiration_alert, what=what, next_ready=ready)


def _latest(queryset: QuerySet[Any], fields: list[str]) -> Subquery:
    """The first row of ``queryset`` as one JSON value: a whole row in one column."""
    return Subquery(
        queryset.values(row=JSONObject(**{name: name for name in fields}))[:1],
        output_field=JSONField(),
    )


def _run_from_json(data: dict[str, Any] | None) -> ValidationRun | None:
    run = _from_json(ValidationRun, data)
    if run is not None and run.requested_by_id and data is not None:
        run.requested_by = get_user_model()(
            pk=run.requested_by_id, username=data.get("requested_by__username")
        )
    return run


def _from_json(model: type[Model], data: dict[str, Any] | None) -> Any:
    """A model instance back from ``_latest``'s JSON (dates arrive as text)."""
    if not data:
        return None
    values = {}
    for field in model._meta.concrete_fields:
        if isinstance(field, EncryptedTextField) and field.name in data:
            # Ciphertext in the JSON: decrypted (or marked unreadable) as a column read is.
            values[field.attname] = field.from_db_value(data[field.name], None, None)
        elif isinstance(field, JSONField) and isinstance(data.get(field.name), str):
            values[field.attname] = json.loads(data[field.name])  # SQLite nests it as text
        elif field.name in data:
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


# What the status block shows, each said once: read as one query's subqueries while the
# settings row exists, one by one before that.
def _health_checks() -> QuerySet[MailHealthCheck]:
    return MailHealthCheck.objects.order_by("-checked_at", "-pk")


def _verdicts() -> QuerySet[ValidationRun]:
    """Manage SMTP's own runs: the fallback connection's page shows its own."""
    return ValidationRun.objects.filter(
        finished_at__isnull=False, scope=RunScope.FULL, connection=SmtpSettings.SINGLETON_PK
    ).order_by("-finished_at")


def _workers() -> QuerySet[WorkerHeartbeat]:
    return WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.WORKER).order_by("-seen_at")


def _beats() -> QuerySet[WorkerHeartbeat]:
    return WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.BEAT).order_by("-seen_at")


def _sent() -> QuerySet[Delivery]:
    return Delivery.objects.filter(state=DeliveryState.SENT).order_by("-sent_at")


def _counted(state: str) -> Q:
    """The messages counted in ``state``: sent ones of the last day only (both indexed)."""
    if state == DeliveryState.SENT:
        return Q(state=state, sent_at__gte=timezone.now() - outbox.SENT_COUNT_WINDOW)
    return Q(state=state)


def _settings_with_status() -> SmtpSettings | None:
    """The stored settings row with everything the status block and the banners show,
    in one query however long the history: each part is an indexed "latest" or a count
    of unsent mail (and of the day's sent mail)."""
    counts = {
        f"_count_{state}": _count(Delivery.objects.filter(_counted(state)))
        for state in DeliveryState.values
    }
    return (
        SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK)
        .annotate(
            _health=_latest(_health_checks(), _HEALTH_FIELDS),
            # The saved settings' own validation (the same values and secret), and the
            # latest run of any values, shown apart when it tested something else.
            _verdict=_latest(
                _verdicts().filter(fingerprint=OuterRef("fingerprint")).exclude(fingerprint=""),
                [*_VERDICT_FIELDS, "requested_by__username"],
            ),
            _trial=_latest(_verdicts(), [*_VERDICT_FIELDS, "requested_by__username"]),
            _worker=_latest(_workers(), ["worker", "role", "seen_at"]),
            _beat=_latest(_beats(), ["worker", "role", "seen_at"]),
            _last_sent=Subquery(_sent().values("sent_at")[:1]),
            **_credential_annotations(),
            _last_connection=Subquery(_sent().values("connection")[:1]),
            _fallback=_latest(_fallback_rows(), _FALLBACK_FIELDS),
            **counts,
        )
        .first()
    )


# What pages say of the fallback connection: how it sends (never its secret).
_FALLBACK_FIELDS = ["id", "transport", "smtp_server", "port", "sender_email", "graph_host"]


def _fallback_rows() -> QuerySet[SmtpSettings]:
    return SmtpSettings.objects.filter(pk=SmtpSettings.FALLBACK_PK)


_CREDENTIAL_FIELDS = [field.name for field in Credential._meta.concrete_fields]
_CREDENTIAL_SLOTS = [
    (auth_type, role) for auth_type in (AuthType.OAUTH2, AuthType.BASIC) for role in Role.values
]


def _credential_annotations() -> dict[str, Subquery]:
    """Each credential slot (authentication type and role) as one JSON column."""
    return {
        f"_credential_{auth_type}_{role}": _latest(
            Credential.objects.filter(auth_type=auth_type, role=role), _CREDENTIAL_FIELDS
        )
        for auth_type, role in _CREDENTIAL_SLOTS
    }


def _credentials_from(row: SmtpSettings) -> None:
    """The row's credentials from its annotations: the page reads them with the row."""
    row.__dict__["_credentials"] = {
        (auth_type, role): _from_json(Credential, getattr(row, f"_credential_{auth_type}_{role}"))
        for auth_type, role in _CREDENTIAL_SLOTS
    }


class MailSnapshot:
    """What one request knows of mail, each piece read once: the status block and the
    banners of the same page share it. With the settings stored, one query reads it all;
    before that, each piece is read when asked for."""

    def __init__(self) -> None:
        row = _settings_with_status()
        self.row = row or SmtpSettings.load()
        if row is None:
            return
        _credentials_from(row)
        # Filled in from the one query: the cached properties below are not asked.
        self.__dict__["health"] = _from_json(MailHealthCheck, row._health)
        self.__dict__["verdict"] = _run_from_json(row._verdict)
        self.__dict__["trial"] = _run_from_json(row._trial)
        self.__dict__["worker"] = _from_json(WorkerHeartbeat, row._worker)
        self.__dict__["beat"] = _from_json(WorkerHeartbeat, row._beat)
        self.__dict__["last_sent"] = row._last_sent
        self.__dict__["last_connection"] = row._last_connection
        self.__dict__["fallback"] = _from_json(SmtpSettings, row._fallback)
        self.__dict__["counts"] = {
            state: getattr(row, f"_count_{state}") for state in DeliveryState.values
        }

    @cached_property
    def health(self) -> MailHealthCheck | None:
        return _health_checks().first()

    @cached_property
    def verdict(self) -> ValidationRun | None:
        """The last validation of the saved settings: none before any are saved."""
        return None

    @cached_property
    def trial(self) -> ValidationRun | None:
        return _verdicts().select_related("requested_by").first()

    @cached_property
    def worker(self) -> WorkerHeartbeat | None:
        return _workers().first()

    @cached_property
    def beat(self) -> WorkerHeartbeat | None:
        return _beats().first()

    @cached_property
    def counts(self) -> dict[str, int]:
        return Delivery.objects.aggregate(
            **{state: Count("pk", filter=_counted(state)) for state in DeliveryState.values}
        )

    @cached_property
    def last_sent(self) -> datetime | None:
        return _sent().values_list("sent_at", flat=True).first()

    @cached_property
    def last_connection(self) -> str | None:
        """Which connection sent the latest message: "fallback" while the primary fails."""
        return _sent().values_list("connection", flat=True).first()

    @cached_property
    def fallback(self) -> SmtpSettings | None:
        """The fallback connection's row, its sending fields only; None without one."""
        return _fallback_rows().only(*_FALLBACK_FIELDS).first()

    @cached_property
    def held(self) -> dict[str, Any] | None:
        return outbox.outbox_held(count=self.counts[DeliveryState.HELD])


def for_request(request: HttpRequest) -> MailSnapshot:
    """The request's snapshot: made once, by the view or by the banners."""
    snapshot = _SNAPSHOTS.get(request)
    if snapshot is None:
        snapshot = _SNAPSHOTS[request] = MailSnapshot()
    return snapshot


# Each request's snapshot, for as long as the request lives.
_SNAPSHOTS: weakref.WeakKeyDictionary[HttpRequest, MailSnapshot] = weakref.WeakKeyDictionary()


def mail_at_a_glance(*, snapshot: MailSnapshot) -> dict[str, Any]:
    """Everything the status block shows."""
    return {
        "secret": secret_expiry(snapshot.row),
        "health": snapshot.health,
        # A result from before the last Save judged other settings.
        "health_not_run": snapshot.row.is_stored
        and not health_check.checks_saved_settings(snapshot.row),
        "health_older": snapshot.health is not None
        and _judged_older_settings(snapshot.health, snapshot.row),
        "validation": snapshot.verdict,
        # A run of other values than those saved (a Validate before Save, or after a change).
        "trial": snapshot.trial
        if snapshot.trial is not None
        and (snapshot.verdict is None or snapshot.trial.pk != snapshot.verdict.pk)
        else None,
        "last_sent": snapshot.last_sent,
        "outbox": snapshot.counts,
        "basic_retiring": snapshot.row.basic_against_microsoft,
    }


_SEVERITY_ORDER = (ERROR, WARNING, INFO)
_AADSTS = re.compile(r"AADSTS\d+")


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
    row = snapshot.row
    found = _secret_banners(row, fallback=snapshot.fallback is not None)
    health = snapshot.health
    # A failure of settings saved over since is not theirs: Save asked for a new check.
    if health is not None and not health.ok and not _judged_older_settings(health, row):
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
    found += _background_gone(snapshot)
    if snapshot.last_connection == "fallback":
        found += fallback_banners(row=row, verdict=snapshot.verdict)
    if snapshot.held:
        _held_banner(found, snapshot.held)
    found.sort(key=lambda banner: _SEVERITY_ORDER.index(banner.severity))
    return found


def _held_banner(found: list[Banner], held: dict[str, Any]) -> None:
    """Held mail, and why: the primary's failure, or both connections' when both failed."""
    count = held["count"]
    messages = f"{count} message{'s' if count != 1 else ''}"
    explanation = held["cause"] or held["last_error"]
    text = (
        f"{messages} held: {explanation} Nothing is lost: "
        f"{'it goes' if count == 1 else 'they go'} out at the next try: Save in Manage SMTP "
        "once the settings are right, or Retry now in the Outbox after a fix made in Entra "
        "ID or Exchange."
    )
    also = (
        f"{messages} wait{'s' if count == 1 else ''} in the Outbox until working settings "
        "are saved (or Retry now, after a fix made in Entra ID or Exchange)."
    )
    both = held_by_both(held, messages)
    if both is not None:
        text, also = both
    _fold(
        found,
        Banner(
            "mail-held",
            text,
            place="smtp_settings:outbox",
            cause=_cause_of(held.get("diagnosis", ""), explanation),
        ),
        also=also,
    )


def _secret_banners(row: SmtpSettings, *, fallback: bool = False) -> list[Banner]:
    """What the stored secret itself says: unreadable, expired, or expiring. With a
    fallback connection saved, mail that the primary cannot send goes through it."""
    found: list[Banner] = []
    stops = (
        "so the primary connection sends nothing (mail goes through the fallback connection "
        "while that works)"
        if fallback
        else "so no mail goes out"
    )
    secret_field = SECRET_FIELD_BY_AUTH_TYPE.get(row.auth_type) if row.is_stored else None
    if secret_field and isinstance(getattr(row, secret_field), UnreadableSecret):
        found.append(
            Banner(
                "secret-unreadable",
                "The stored secret cannot be decrypted with the keys in SEI_ENCRYPTION_KEYS, "
                f"{stops}. Restore the key it was saved with, or enter the secret "
                "again in Manage SMTP.",
                cause="secret-unreadable",
            )
        )
    expiry = secret_expiry(row)
    banner = _expiry_banner(expiry, stops=stops) if expiry else None
    if banner is not None:
        found.append(banner)
    in_use = row.credential(AuthType.OAUTH2) if row.auth_type == AuthType.OAUTH2 else None
    if in_use is not None and in_use.refused_at is not None:
        found.append(
            Banner(
                "credential-fallback",
                f"Entra ID refused the credential in use ({in_use.name}): the console switched "
                "to the other credential, and mail goes out with it. Make the other one the one "
                f"in use, or fix this one in Entra ID. Entra's answer: {in_use.refused_answer}",
                severity=WARNING,
                fragment="#credentials",
                cause="credential-fallback",
            )
        )
    return found


def _expiry_banner(expiry: SecretExpiry, *, stops: str = "so no mail goes out") -> Banner | None:
    """What the credential in use's expiry says: expired, expiring (and what is left to do
    when the next one is ready), or nothing."""
    if expiry.urgency == "expired":
        return Banner(
            "secret-expired",
            f"The {expiry.what} expired on {expiry.expires.isoformat()} "
            + (
                f"(AADSTS700027: Entra ID refuses it), {stops} unless the other "
                "credential works. Create a new certificate in Manage SMTP > Credentials."
                if expiry.what == "certificate"
                else f"(AADSTS7000222: Entra ID refuses it), {stops}. Create a "
                "new secret in Entra ID and save it in Manage SMTP."
            ),
            cause="aadsts_secret_expired",
        )
    elif expiry.urgency in ("urgent", "soon") and expiry.next_ready:
        days = "today" if expiry.days_left == 0 else f"in {expiry.days_left} days"
        return Banner(
            "secret-expiring",
            f"The {expiry.what} in use expires {days} ({expiry.expires.isoformat()}); the "
            f"next credential ({expiry.next_ready}) passed Validate. Left to do: make it "
            "the one in use in Manage SMTP > Credentials, then remove the old one there "
            "and in Entra ID.",
            severity=INFO,
            cause="secret-expiring",
        )
    elif expiry.urgency in ("urgent", "soon") and expiry.what == "certificate":
        days = "today" if expiry.days_left == 0 else f"in {expiry.days_left} days"
        return Banner(
            "secret-expiring",
            f"The certificate in use expires {days} ({expiry.expires.isoformat()}). Create "
            "the next one in Manage SMTP > Credentials, upload it in Entra ID, Validate it "
            "and make it the one in use before then.",
            severity=WARNING if expiry.urgency == "urgent" else INFO,
            cause="secret-expiring",
        )
    elif expiry.urgency in ("urgent", "soon"):
        days = "today" if expiry.days_left == 0 else f"in {expiry.days_left} days"
        return Banner(
            "secret-expiring",
            f"The client secret expires {days} ({expiry.expires.isoformat()}). Create a new "
            "secret in Entra ID and save it in Manage SMTP before then.",
            # Within the week mail will stop soon; within the month it is to know.
            severity=WARNING if expiry.urgency == "urgent" else INFO,
            cause="secret-expiring",
        )
    return None


@dataclass(frozen=True)
class Process:
    """A background process as the pages show it."""

    role: str
    name: str
    waits: str  # what waits while it is gone
    heartbeat: WorkerHeartbeat | None
    gone: bool


def background(snapshot: MailSnapshot) -> list[Process]:
    """The worker and beat: when each last reported, and whether it counts as gone."""
    now = timezone.now()
    return [
        Process(
            role, name, waits, heartbeat,
            heartbeat is not None
            and (now - heartbeat.seen_at).total_seconds() > WorkerHeartbeat.stale_after(),
        )
        for role, name, waits, heartbeat in (
            (WorkerHeartbeat.WORKER, "Celery worker",
             "no mail leaves, Validate and reminders wait", snapshot.worker),
            (WorkerHeartbeat.BEAT, "Celery beat",
             "reminders, health checks and retries of deferred mail wait", snapshot.beat),
        )
    ]  # fmt: skip


def _background_gone(snapshot: MailSnapshot) -> list[Banner]:
    found = []
    for process in background(snapshot):
        if process.gone and process.heartbeat is not None:
            since = timezone.localtime(process.heartbeat.seen_at)
            found.append(
                Banner(
                    f"{process.role}-gone",
                    f"The {process.name} ({process.heartbeat.worker}) has not reported since "
                    f"{since:%Y-%m-%d %H:%M:%S}: {process.waits}. Start it again (make run, "
                    "or your service manager) and look at its log.",
                    place="administration",
                    fragment="#background",
                    cause=f"{process.role}-gone",
                )
            )
    return found


def _judged_older_settings(health: MailHealthCheck, row: SmtpSettings) -> bool:
    return bool(row.is_stored and row.updated_at and health.checked_at < row.updated_at)
