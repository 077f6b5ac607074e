"""What Manage SMTP does: save the settings and keep their history.

Views and tasks call these functions; they hold no logic of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from smtp_settings.forms import SECRET_FIELDS, SmtpSettingsForm
from smtp_settings.models import SettingsChange, SmtpSettings, WorkerHeartbeat

logger = logging.getLogger(__name__)

# The time a secret field's "replaced at" column is updated with.
_REPLACED_AT = {"client_secret": "client_secret_replaced_at", "password": "password_replaced_at"}


@dataclass(frozen=True)
class SaveResult:
    settings: SmtpSettings
    warnings: list[str] = field(default_factory=list)


def _display(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _field_label(name: str) -> str:
    return str(SmtpSettings._meta.get_field(name).verbose_name)


@transaction.atomic
def smtp_settings_save(*, form: SmtpSettingsForm, user: AbstractBaseUser | None) -> SaveResult:
    """Store a valid form's settings, keeping blank secrets, and record what changed."""
    if not form.is_valid():
        raise ValueError("smtp_settings_save needs a valid form")
    before = SmtpSettings.objects.select_for_update().filter(pk=SmtpSettings.SINGLETON_PK).first()
    settings_row: SmtpSettings = form.save(commit=False)
    settings_row.pk = SmtpSettings.SINGLETON_PK
    now = timezone.now()
    changes: list[dict[str, str]] = []
    for name in form.Meta.fields:
        old = getattr(before, name) if before else None
        new = getattr(settings_row, name)
        if before is None and new in (None, ""):
            continue
        if old != new:
            changes.append(
                {
                    "field": name,
                    "label": _field_label(name),
                    "old": _display(old),
                    "new": _display(new),
                }
            )
    for name in SECRET_FIELDS:
        value = form.cleaned_data.get(name)
        if value:
            setattr(settings_row, name, value)
            setattr(settings_row, _REPLACED_AT[name], now)
            changes.append(
                {"field": name, "label": _field_label(name), "old": "", "new": "replaced"}
            )
    settings_row.updated_by = user if user and user.is_authenticated else None
    settings_row.save()
    if changes:
        SettingsChange.objects.create(
            changed_at=now, changed_by=settings_row.updated_by, changes=changes
        )
    logger.info(
        "SMTP settings saved by %s: %s",
        settings_row.updated_by.get_username() if settings_row.updated_by else "system",
        ", ".join(entry["field"] for entry in changes) or "no changes",
    )
    return SaveResult(settings=settings_row, warnings=list(form.warnings))


def smtp_settings_recent_changes(*, limit: int = 10) -> list[SettingsChange]:
    return list(SettingsChange.objects.select_related("changed_by")[:limit])


@dataclass(frozen=True)
class SecretStatus:
    """What the page may say about a stored secret: whether one exists and since when."""

    label: str
    stored: bool
    replaced_at: Any


def smtp_settings_secret_status(*, settings_row: SmtpSettings) -> dict[str, SecretStatus]:
    """Per secret field, whether a value is stored; never the value itself."""
    if not settings_row.is_stored:
        return {}
    return {
        name: SecretStatus(
            label=_field_label(name),
            stored=bool(getattr(settings_row, name)),
            replaced_at=getattr(settings_row, _REPLACED_AT[name]),
        )
        for name in SECRET_FIELDS
    }


def worker_heartbeat_record(*, worker: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        worker=worker[:255], defaults={"seen_at": timezone.now()}
    )
    return heartbeat


def worker_last_seen() -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.order_by("-seen_at").first()
