"""E-mail to administrators before mail can stop: secret-expiry reminders and health alerts.

Both go out through the outbox, so while the settings are broken they wait there
(held) and leave as soon as working settings are saved.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from smtp_settings.links import console_url
from smtp_settings.mail import microsoft
from smtp_settings.models import AuthType, MailHealthCheck, SecretReminder, SmtpSettings
from smtp_settings.permissions import ADMINISTER_PERMISSION
from smtp_settings.sending import smtp_settings_mail_for_sending
from smtp_settings.validation import token_check
from smtp_settings.validators import parse_addresses

logger = logging.getLogger(__name__)

# Days before the Secret Expiration Date a reminder goes; after it, one a week.
REMINDER_DAYS = (30, 14, 7, 3, 1, 0)


def manage_smtp_url() -> str:
    return console_url(reverse("smtp_settings:manage"))


def alert_recipients(*, settings_row: SmtpSettings) -> list[str]:
    """Every active administrator with an e-mail address, then the Alert recipients."""
    app_label, codename = ADMINISTER_PERMISSION.split(".")
    permitted = (
        Q(is_superuser=True)
        | Q(
            user_permissions__codename=codename, user_permissions__content_type__app_label=app_label
        )
        | Q(
            groups__permissions__codename=codename,
            groups__permissions__content_type__app_label=app_label,
        )
    )
    admins = (
        get_user_model()
        .objects.filter(permitted, is_active=True)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )
    recipients: list[str] = []
    for address in [*admins, *parse_addresses(settings_row.alert_recipients)]:
        if address.lower() not in (known.lower() for known in recipients):
            recipients.append(address)
    return recipients


def _notify(*, subject: str, body: str, recipients: list[str]) -> None:
    # One message each: administrators do not see each other's addresses.
    for address in recipients:
        send_mail(f"[SEI Administration] {subject}", body, None, [address])


# -- secret-expiry reminders -------------------------------------------------------------


def reminder_threshold(*, expires: date, today: date) -> str | None:
    """Which reminder is due: the nearest of 30/14/7/3/1/0 days not yet passed, or the
    expired week; None while the date is more than 30 days away."""
    days = (expires - today).days
    if days > REMINDER_DAYS[0]:
        return None
    if days >= 0:
        return f"{min(day for day in REMINDER_DAYS if day >= days)}d"
    return f"expired-w{(-days - 1) // 7 + 1}"


def _series(row: SmtpSettings) -> str:
    """Names one secret and one date (no secret material): a change starts a new series."""
    replaced = row.client_secret_replaced_at.isoformat() if row.client_secret_replaced_at else ""
    text = f"{row.client_id}|{row.token_endpoint}|{replaced}|{row.secret_expiration_date}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ReminderReport:
    """What the reminder job did: the reminder it sent, and to whom, or why none."""

    threshold: str = ""
    recipients: list[str] = field(default_factory=list)
    subject: str = ""
    reason: str = ""

    @property
    def sent(self) -> bool:
        return bool(self.threshold)


def _reminder_text(row: SmtpSettings, *, today: date) -> tuple[str, str]:
    expires = row.secret_expiration_date
    assert expires is not None
    days = (expires - today).days
    if days > 1:
        when, subject = f"expires on {expires:%Y-%m-%d}, in {days} days", f"expires in {days} days"
    elif days == 1:
        when, subject = f"expires tomorrow, {expires:%Y-%m-%d}", "expires tomorrow"
    elif days == 0:
        when, subject = f"expires today, {expires:%Y-%m-%d}", "expires today"
    else:
        when = f"expired on {expires:%Y-%m-%d}, {-days} days ago"
        subject = f"expired {-days} days ago"
    tenant = microsoft.tenant_from_token_endpoint(row.token_endpoint) or row.token_endpoint
    replaced = (
        f"{timezone.localtime(row.client_secret_replaced_at):%Y-%m-%d %H:%M %Z}"
        if row.client_secret_replaced_at
        else "unknown"
    )
    consequence = (
        "Entra ID now refuses it (AADSTS7000222): the console's mail waits in its outbox "
        "until a new secret is saved."
        if days < 0
        else "When it expires, Entra ID stops issuing tokens (AADSTS7000222) and the "
        "console's mail stops until a new secret is saved."
    )
    body = f"""The client secret that SEI Administration uses to send e-mail through
Microsoft 365 {when}. {consequence}

The secret
  Application (client) ID: {row.client_id}
  Directory (tenant):      {tenant}
  Sender:                  {row.sender_email}
  Stored in the console:   {replaced}
  Expires:                 {expires:%Y-%m-%d}

What to do
  1. In the Microsoft Entra admin center, open App registrations, the app with the
     client ID above, then Certificates & secrets, and add a new client secret.
  2. Copy its Value at once (Entra shows it only this one time; the Secret ID is not
     the value) and note its Expires date.
  3. Open Manage SMTP: {manage_smtp_url()}
     Paste the Value into Client Secret and the date into Secret Expiration Date.
  4. Click Validate; when every step passes, click Save.
  5. Once mail goes out with the new secret, delete the old one in Entra ID.

You receive this as an administrator of SEI Administration's mail settings, or because
your address is listed under Alert recipients. Reminders come 30, 14, 7, 3 and 1 days
before the date, on the day, and every week after it until a new secret is saved.
"""
    return f"The SMTP client secret {subject}", body


def secret_expiry_reminders_send(*, now: datetime | None = None) -> ReminderReport:
    """Send the reminder that is due today, once per secret and threshold."""
    row = SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).first()
    if row is None or row.auth_type != AuthType.OAUTH2:
        return ReminderReport(reason="No OAuth 2.0 settings are saved: no secret to watch.")
    if not row.secret_expiration_alert:
        return ReminderReport(reason="Secret Expiration Alert is off.")
    if row.secret_expiration_date is None:
        return ReminderReport(reason="No Secret Expiration Date is saved.")
    today = timezone.localdate(now)
    threshold = reminder_threshold(expires=row.secret_expiration_date, today=today)
    if threshold is None:
        days = (row.secret_expiration_date - today).days
        return ReminderReport(
            reason=f"The secret expires in {days} days; the first reminder goes 30 days before."
        )
    recipients = alert_recipients(settings_row=row)
    if not recipients:
        logger.warning("A secret-expiry reminder is due, but no administrator has an address")
        return ReminderReport(
            reason="A reminder is due, but no administrator has an e-mail address and no "
            "Alert recipients are set: it has nobody to go to."
        )
    subject, body = _reminder_text(row, today=today)
    try:
        with transaction.atomic():
            # The row first: a second job (or a second beat) stops here, on the constraint.
            SecretReminder.objects.create(
                series=_series(row),
                threshold=threshold,
                expires_on=row.secret_expiration_date,
                recipients=recipients,
                sent_at=now or timezone.now(),
            )
            _notify(subject=subject, body=body, recipients=recipients)
    except IntegrityError:
        return ReminderReport(reason=f"The {threshold} reminder for this secret went already.")
    count = len(recipients)
    logger.info(
        "Secret-expiry reminder %s queued for %s recipient%s", threshold, count, "s"[: count != 1]
    )
    return ReminderReport(threshold=threshold, recipients=recipients, subject=subject)


# -- the health check ----------------------------------------------------------------------


def mail_health_check_run() -> MailHealthCheck | None:
    """A token with the saved settings and its contents (no SMTP); e-mail administrators
    when the result changes: once when it first fails, once when it recovers."""
    row = SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).first()
    if row is None or row.auth_type != AuthType.OAUTH2:
        return None
    result = token_check.check_token_of(
        smtp_settings_mail_for_sending, timeout=float(settings.SMTP_NETWORK_TIMEOUT_SECONDS)
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
        _notify(
            subject=_health_subject(check),
            body=_health_body(check),
            recipients=alert_recipients(settings_row=row),
        )
    # Keep a few weeks of daily checks, not years.
    old = MailHealthCheck.objects.values_list("pk", flat=True)[100:]
    MailHealthCheck.objects.filter(pk__in=list(old)).delete()
    return check


def _health_subject(check: MailHealthCheck) -> str:
    if check.ok:
        return "Mail works again: the health check passed"
    return "Mail will fail: the health check could not get a usable token"


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
