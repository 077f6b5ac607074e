"""What Manage SMTP does: save the settings, keep their history, say which secrets are stored.

Views and tasks call these functions; they hold no logic of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from activity.models import Kind
from activity.service import activity_record
from smtp_settings import outbox
from smtp_settings.crypto import UnreadableSecret
from smtp_settings.models import (
    EDITABLE_FIELDS,
    REPLACED_AT,
    SECRET_FIELDS,
    SECRET_LABELS,
    AuthType,
    SettingsChange,
    SmtpSettings,
    Transport,
    blank_secret_moved,
    saved_settings_fingerprint,
    secrets_moved,
)
from smtp_settings.monitoring.health_check import (
    failure_alerts_wait_for_check,
    mail_health_check_request,
)

logger = logging.getLogger(__name__)


def _display(value: Any, name: str = "") -> str:
    if name == "auth_type" and value in AuthType.values:
        return str(AuthType(value).label)
    if name == "transport" and value in Transport.values:
        return str(Transport(value).label)
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _field_label(name: str) -> str:
    return SECRET_LABELS.get(name) or str(SmtpSettings._meta.get_field(name).verbose_name)


class StaleSettings(Exception):
    """The settings were saved by someone else after the page with these values was opened."""

    def __init__(self, row: SmtpSettings) -> None:
        who = row.updated_by.get_username() if row.updated_by else "someone"
        when = timezone.localtime(row.updated_at)
        super().__init__(
            f"{who} saved these settings at {when:%Y-%m-%d %H:%M:%S} since you opened the page, "
            "so nothing was saved. Your input is kept below: compare it with the settings "
            "now stored (open Manage SMTP in another tab), then Save again."
        )


# How the activity trail and the history name a save of each settings row.
SAVED_AS = {
    SmtpSettings.SINGLETON_PK: "Saved Manage SMTP",
    SmtpSettings.FALLBACK_PK: "Fallback connection saved",
}
FALLBACK_REMOVED = "Fallback connection removed."


def _activity_summary(changes: list[dict[str, str]], pk: int = SmtpSettings.SINGLETON_PK) -> str:
    """The changes in words, as the history on Manage SMTP shows them: a secret is only ever
    "replaced" or "cleared", never its value. A fallback connection's save says so."""
    saved = SAVED_AS.get(pk, SAVED_AS[SmtpSettings.SINGLETON_PK])
    if not changes:
        return f"{saved} without changes."
    # Secrets first: a long list is cut at the end, and a replaced secret matters most.
    parts = [f"{e['label']} {e['new']}" for e in changes if e["field"] in SECRET_FIELDS]
    parts += [
        f"{e['label']}: {e['new']}"
        if e["old"] == "(empty)"
        else f"{e['label']}: {e['old']} → {e['new']}"
        for e in changes
        if e["field"] not in SECRET_FIELDS
    ]
    return f"{saved}: " + "; ".join(parts) + "."


def _change(name: str, old: str, new: str) -> dict[str, str]:
    return {"field": name, "label": _field_label(name), "old": old, "new": new}


@sensitive_variables("values", "row", "before")
def _fields_apply(
    row: SmtpSettings, before: SmtpSettings | None, values: Mapping[str, Any]
) -> list[dict[str, str]]:
    """Set the editable fields ``values`` holds on ``row``; what changed, in words."""
    changes = []
    for name in EDITABLE_FIELDS:
        if name not in values:
            continue
        old = getattr(before, name) if before else None
        new = values[name]
        setattr(row, name, new)
        if before is None and new in (None, ""):
            continue
        if old != new:
            changes.append(_change(name, _display(old, name), _display(new, name)))
    return changes


@sensitive_variables("values", "row")
def _secrets_apply(
    row: SmtpSettings, values: Mapping[str, Any], *, moved: set[str], now: Any
) -> list[dict[str, str]]:
    """A secret entered replaces the stored one; a stored one the values move elsewhere
    (``moved``: the other authentication type's, entered for the old server) is not kept."""
    changes = []
    for name in SECRET_FIELDS:
        if values.get(name):
            setattr(row, name, values[name])
            setattr(row, REPLACED_AT[name], now)
            changes.append(_change(name, "", "replaced"))
        elif name in moved and getattr(row, name):
            setattr(row, name, None)
            setattr(row, REPLACED_AT[name], None)
            changes.append(_change(name, "", "cleared"))
    return changes


@sensitive_variables("values", "row", "before", "made_key")
def smtp_settings_save(
    *,
    values: Mapping[str, Any],
    user: AbstractBaseUser | None,
    opened_version: int | None = None,
    pk: int = SmtpSettings.SINGLETON_PK,
) -> SmtpSettings:
    """Store validated settings and record what changed (``pk``: the primary connection's
    row, or ``SmtpSettings.FALLBACK_PK`` for the fallback connection's).

    ``values`` are the form's cleaned values: a field that is absent keeps its stored
    value (the other authentication type's fields), and so does a blank secret.
    ``opened_version`` is the version the page showed; if the stored one moved on since,
    ``StaleSettings`` is raised and nothing changes.
    """
    # A block, not a decorator: the decorator's frame would show the arguments in error
    # reports, secrets included.
    with transaction.atomic():
        before = SmtpSettings.objects.select_for_update().filter(pk=pk).first()
        if before is not None and opened_version is not None and before.version != opened_version:
            raise StaleSettings(before)
        if before is not None and blank_secret_moved(before, values):
            raise StaleSettings(before)
        # The setup assistant's certificate: stored as one, never as a client secret.
        made_pem = str(values.get("client_certificate_pem") or "")
        made_key = str(values.get("client_secret") or "") if made_pem else ""
        if made_pem:
            values = {name: value for name, value in values.items() if name != "client_secret"}
        # Read before the fields change: ``row`` is ``before`` once settings are stored.
        moved = secrets_moved(before, values)
        row = SmtpSettings(pk=pk) if before is None else before
        now = timezone.now()
        changes = _fields_apply(row, before, values)
        changes += _secrets_apply(row, values, moved=moved, now=now)
        row.updated_by = user if user and user.is_authenticated else None
        row.version += 1
        row.fingerprint = saved_settings_fingerprint(row)
        row.check_ok, row.check_detail, row.checked_at = None, "", None  # not checked yet
        row.save()
        if made_pem:
            _certificate_saved(row, key_pem=made_key, certificate_pem=made_pem, changes=changes)
        _changes_record(row, changes, now)
        # Messages held on broken settings get one more attempt with these.
        outbox.outbox_release_held(by=row.updated_by)
        if row.auth_type == AuthType.OAUTH2:
            # The last health check judged the settings before these: check these now, so
            # that its banner, the status line and /healthz say what holds for them (a
            # fallback connection's: so that it is not first found broken when needed).
            mail_health_check_request(throttled=False)
        if row.auth_type == AuthType.OAUTH2 and pk == SmtpSettings.SINGLETON_PK:
            failure_alerts_wait_for_check()
        return row


@sensitive_variables("key_pem")
def _certificate_saved(
    row: SmtpSettings, *, key_pem: str, certificate_pem: str, changes: list[dict[str, str]]
) -> None:
    """The setup assistant's certificate becomes the credential in use (its expiry read from
    it), and the saved settings' fingerprint names it."""
    from smtp_settings.credentials.service import certificate_put_in_use

    credential = certificate_put_in_use(
        row=row, key_pem=key_pem, certificate_pem=certificate_pem, user=row.updated_by
    )
    SmtpSettings.objects.filter(pk=row.pk).update(fingerprint=saved_settings_fingerprint(row))
    changes.append(_change("client_secret", "", f"replaced by {credential.name}"))


def _changes_record(row: SmtpSettings, changes: list[dict[str, str]], now: Any) -> None:
    """The history on Manage SMTP, the log line and the activity trail."""
    if changes:
        SettingsChange.objects.create(
            changed_at=now, changed_by=row.updated_by, changes=changes, connection=row.pk
        )
    logger.info(
        "%s by %s: %s",
        "Fallback connection saved"
        if row.pk == SmtpSettings.FALLBACK_PK
        else "SMTP settings saved",
        row.updated_by.get_username() if row.updated_by else "system",
        ", ".join(entry["field"] for entry in changes) or "no changes",
    )
    activity_record(
        kind=Kind.SETTINGS_SAVED,
        summary=_activity_summary(changes, row.pk),
        actor=row.updated_by,
    )


def smtp_fallback_remove(*, user: AbstractBaseUser | None) -> bool:
    """No fallback connection any more: the outbox holds on the primary's failures again."""
    with transaction.atomic():
        row = SmtpSettings.objects.filter(pk=SmtpSettings.FALLBACK_PK).first()
        if row is None:
            return False
        # Its secret goes with it: nothing stored outlives the connection it was typed for.
        row.credentials_delete()
        row.delete()
        actor = user if user is not None and user.is_authenticated else None
        SettingsChange.objects.create(
            changed_by=actor,
            connection=SmtpSettings.FALLBACK_PK,
            changes=[_removed_change()],
        )
        activity_record(kind=Kind.SETTINGS_SAVED, summary=FALLBACK_REMOVED, actor=user)
    return True


def _removed_change() -> dict[str, str]:
    return {"field": "", "label": "Fallback connection", "old": "", "new": "removed"}


def smtp_settings_recent_changes(
    *, limit: int = 10, connection: int | None = None
) -> list[SettingsChange]:
    """The latest saves: of every connection (Manage SMTP's history, the fallback's
    labelled), or of one (``connection``: a settings row's primary key)."""
    changes = SettingsChange.objects.select_related("changed_by")
    if connection is not None:
        changes = changes.filter(connection=connection)
    return list(changes[:limit])


@dataclass(frozen=True)
class SecretStatus:
    """What the page may say about a stored secret: whether one exists and since when."""

    label: str
    stored: bool
    replaced_at: Any
    # Stored, but no key in SEI_ENCRYPTION_KEYS decrypts it.
    unreadable: bool = False


def smtp_settings_secret_bindings(*, settings_row: SmtpSettings) -> dict[str, Any]:
    """Per stored credential (client secret or certificate, password), the field values it
    was entered for (none is secret): the page warns before a Save that would clear it."""
    if not settings_row.is_stored:
        return {}
    found: dict[str, Any] = {}
    for field, auth_type in (("client_secret", AuthType.OAUTH2), ("password", AuthType.BASIC)):
        credential = settings_row.credential(auth_type)
        if credential is not None and credential.bound_to:
            label = "certificate" if credential.kind == "certificate" else _field_label(field)
            found[field] = {"label": label.lower(), "bound": credential.bound_to}
    return found


def smtp_settings_secret_status(*, settings_row: SmtpSettings) -> dict[str, SecretStatus]:
    """Per secret field, whether a value is stored; never the value itself."""
    if not settings_row.is_stored:
        return {}
    in_use = settings_row.credential(AuthType.OAUTH2)
    if in_use is not None and in_use.kind == "certificate":
        # The OAuth credential in use is a certificate: the field may replace it by a secret.
        return {
            "client_secret": SecretStatus(
                label="Certificate (see Credentials below)",
                stored=True,
                replaced_at=in_use.added_at,
            ),
            "password": _status(settings_row, "password"),
        }
    return {
        name: SecretStatus(
            label=_field_label(name),
            stored=bool(getattr(settings_row, name)),
            replaced_at=getattr(settings_row, REPLACED_AT[name]),
            unreadable=isinstance(getattr(settings_row, name), UnreadableSecret),
        )
        for name in SECRET_FIELDS
    }


def _status(settings_row: SmtpSettings, name: str) -> SecretStatus:
    return SecretStatus(
        label=_field_label(name),
        stored=bool(getattr(settings_row, name)),
        replaced_at=getattr(settings_row, REPLACED_AT[name]),
        unreadable=isinstance(getattr(settings_row, name), UnreadableSecret),
    )
