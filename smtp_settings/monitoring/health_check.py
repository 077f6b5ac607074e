"""The daily health check: a token with the saved settings and its contents (no SMTP),
run by a worker; administrators hear when its result changes."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from smtp_settings import enqueue, outbox
from smtp_settings.models import AuthType, Delivery, DeliveryState, MailHealthCheck, SmtpSettings
from smtp_settings.monitoring.alerts import (
    ALERT_SUBJECT_PREFIX,
    alert_recipients,
    alert_send,
    manage_smtp_url,
)
from smtp_settings.sending import saved_mail_settings
from smtp_settings.signals import alert_raised
from smtp_settings.validation import token_check

HEALTH_CHECK_TASK = "smtp_settings.tasks.mail_health_check"
HEALTH_CHECK_EVERY_SECONDS = 60
_FAILED_SUBJECT = "Mail will fail: the health check could not get a usable token"
# How long released failure alerts wait at a Save for the check that Save asks for.
_CHECK_GRACE_SECONDS = 60


def failure_alerts_wait_for_check() -> int:
    """At a Save: the "mail will fail" e-mails still queued (released with the held mail)
    wait a minute, so that the check of the new settings decides first whether they are
    still true (it withdraws them if it passes; if it fails they go)."""
    return outbox.outbox_postpone(subject=_mailed(_FAILED_SUBJECT), seconds=_CHECK_GRACE_SECONDS)


def _mailed(subject: str) -> str:
    return f"{ALERT_SUBJECT_PREFIX}{subject}"


def checks_saved_settings(row: SmtpSettings | None) -> bool:
    """The check asks Entra ID for a token: with Basic or no authentication there is
    none to ask for (Validate proves those settings)."""
    return row is not None and row.auth_type == AuthType.OAUTH2


def mail_health_check_request(*, throttled: bool = True) -> bool:
    """Ask a worker to run the health check (it needs the network, so never in a request);
    at most once a minute, whoever asks (each run is a token request to Entra ID), unless
    new settings were just saved."""
    if throttled and not cache.add(
        "mail-health-check-requested", True, timeout=HEALTH_CHECK_EVERY_SECONDS
    ):
        return False
    enqueue.after_commit(HEALTH_CHECK_TASK)
    return True


def mail_health_check_run() -> MailHealthCheck | None:
    """A token with the saved settings and its contents (no SMTP); e-mail administrators
    when the result changes: once when it first fails, once when it recovers."""
    row = SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).first()
    if not checks_saved_settings(row):
        return None
    result = token_check.check_token_of(
        saved_mail_settings, timeout=float(settings.SMTP_NETWORK_TIMEOUT_SECONDS)
    )
    previous = MailHealthCheck.objects.first()
    changed = (previous is None and not result.ok) or (
        previous is not None and previous.ok != result.ok
    )
    finding = result.finding
    check = MailHealthCheck.objects.create(
        ok=result.ok,
        step=result.step,
        detail=result.detail,
        answer=result.answer,
        diagnosis=finding.key if finding else "",
        cause=finding.cause if finding else "",
        fix=finding.fix if finding else "",
        alerted=changed,
    )
    if changed:
        _tell(check, row)
    # Keep a few weeks of daily checks, not years.
    old = MailHealthCheck.objects.values_list("pk", flat=True)[100:]
    MailHealthCheck.objects.filter(pk__in=list(old)).delete()
    return check


def _tell(check: MailHealthCheck, row: SmtpSettings) -> None:
    """A changed result, by e-mail and to the destinations. A recovery whose failure e-mail
    never left (withdrawn: the check passed while it waited) says what had failed, so that
    "works again" is not news of something nobody heard of (consent withdrawn and granted
    again is worth knowing)."""
    body = _health_body(check)
    if check.ok:
        unheard = _failure_unheard()
        outbox.outbox_withdraw(
            subject=_mailed(_FAILED_SUBJECT),
            reason=f"Not sent: no longer true, the health check passed at "
            f"{timezone.localtime(check.checked_at):%Y-%m-%d %H:%M %Z} before it left.",
        )
        if unheard is not None:
            since = timezone.localtime(unheard.checked_at)
            body += (
                f"\nWhat had failed, from {since:%Y-%m-%d %H:%M %Z}: {unheard.detail} (its "
                "warning e-mail was not sent: it was still waiting when this check passed).\n"
            )
    alert_send(
        subject=_health_subject(check), body=body, recipients=alert_recipients(settings_row=row)
    )
    # Each result makes an undelivered alert of the other untrue: it is not sent any more.
    alert_raised.send(
        sender=MailHealthCheck,
        key=f"health:{check.pk}",
        kind="health.recovered" if check.ok else "health.failed",
        title=_health_subject(check),
        body=body,
        drops_pending=("health.failed",) if check.ok else ("health.recovered",),
    )


def _failure_unheard() -> MailHealthCheck | None:
    """The failure being recovered from, if none of its e-mails was sent."""
    failed = MailHealthCheck.objects.filter(ok=False, alerted=True).order_by("-checked_at").first()
    if failed is None:
        return None
    left = Delivery.objects.filter(
        state=DeliveryState.SENT,
        email__subject=_mailed(_FAILED_SUBJECT),
        email__created__gte=failed.checked_at,
    )
    return None if left.exists() else failed


def _health_subject(check: MailHealthCheck) -> str:
    if check.ok:
        return "Mail works again: the health check passed"
    return _FAILED_SUBJECT


def _health_body(check: MailHealthCheck) -> str:
    if check.ok:
        return (
            "The health check of SEI Administration's mail settings passes again: Entra ID "
            f"issues a token that lets the app send.\n\n{check.detail}\n\nManage SMTP: "
            f"{manage_smtp_url()}\n"
        )
    lines = [
        "The health check of SEI Administration's mail settings failed: with the saved",
        "settings the console cannot get a token that lets it send mail.",
        "",
        f"What failed: {check.detail}",
    ]
    if check.answer:
        lines.append(f"Entra ID said: {check.answer}")
    if check.cause:
        lines.append(f"Likely cause: {check.cause}")
    if check.fix:
        lines.append(f"Fix: {check.fix}")
    lines += [
        "",
        f"Then click Validate and Save on Manage SMTP: {manage_smtp_url()}",
        "Mail the console sends meanwhile waits in its outbox. You will hear again when the",
        "check passes.",
    ]
    return "\n".join(lines) + "\n"
