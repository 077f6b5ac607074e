"""The fallback connection's part of the health check: a token with its saved settings, so
that a fallback that would fail is known now, not first when the primary needs it. Either
connection failing alone is told (e-mail and alert destinations), once when it starts
failing and once when it passes again."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from smtp_settings.links import console_url
from smtp_settings.models import AuthType, SmtpSettings
from smtp_settings.monitoring.alerts import alert_recipients, alert_send
from smtp_settings.sending import saved_fallback_settings_to_check
from smtp_settings.signals import alert_raised
from smtp_settings.validation import token_check

FAILED = "fallback.failed"
RECOVERED = "fallback.recovered"


def fallback_health_check_run() -> bool | None:
    """Check the fallback connection's token (OAuth 2.0 only; None when there is nothing to
    check) and tell administrators when the result changes; returns whether it passed."""
    row = SmtpSettings.objects.filter(pk=SmtpSettings.FALLBACK_PK).first()
    if row is None or row.auth_type != AuthType.OAUTH2:
        return None
    result = token_check.check_token_of(
        saved_fallback_settings_to_check, timeout=float(settings.SMTP_NETWORK_TIMEOUT_SECONDS)
    )
    finding = result.finding
    detail = " ".join(part for part in (result.detail, finding.cause if finding else "") if part)
    SmtpSettings.objects.filter(pk=row.pk).update(
        check_ok=result.ok, check_detail=detail, checked_at=timezone.now()
    )
    changed = (row.check_ok is None and not result.ok) or (
        row.check_ok is not None and row.check_ok != result.ok
    )
    if changed:
        _tell(ok=result.ok, detail=detail, fix=finding.fix if finding else "")
    return result.ok


def _tell(*, ok: bool, detail: str, fix: str) -> None:
    page = console_url(reverse("smtp_settings:fallback"))
    if ok:
        title = "The fallback connection works again"
        body = f"The fallback connection's health check passes again.\n\n{detail}\n\n{page}\n"
    else:
        title = "The fallback connection would fail: its health check failed"
        body = (
            "The fallback connection's health check could not get a usable token. Mail "
            "still leaves through the primary; but if the primary fails, nothing can take "
            f"over.\n\nWhat failed: {detail}\n"
            + (f"Fix: {fix}\n" if fix else "")
            + f"\nFallback connection: {page}\n"
        )
    alert_send(
        subject=title,
        body=body,
        recipients=alert_recipients(settings_row=SmtpSettings.load()),
    )
    alert_raised.send(
        sender=SmtpSettings,
        key=f"fallback-health:{timezone.now().isoformat()}",
        kind=RECOVERED if ok else FAILED,
        title=title,
        body=body,
        drops_pending=(FAILED,) if ok else (RECOVERED,),
    )
