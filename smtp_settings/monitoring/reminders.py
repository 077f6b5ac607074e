"""Secret-expiry reminders: 30, 14, 7, 3 and 1 days before the Secret Expiration Date,
on the day, then weekly; each once per secret and threshold."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from smtp_settings.mail import microsoft
from smtp_settings.models import AuthType, SecretReminder, SmtpSettings
from smtp_settings.monitoring.alerts import alert_recipients, alert_send, manage_smtp_url
from smtp_settings.signals import alert_raised

logger = logging.getLogger(__name__)

# Days before the Secret Expiration Date a reminder goes; after it, one a week.
REMINDER_DAYS = (30, 14, 7, 3, 1, 0)


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
        # Still raised: alert destinations outside mail (Administration > Alerts) get it.
        logger.warning("A secret-expiry reminder is due, but no administrator has an address")
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
            alert_send(subject=subject, body=body, recipients=recipients)
            alert_raised.send(
                sender=SecretReminder,
                key=f"secret-expiry:{_series(row)}:{threshold}",
                kind="secret.expiry",
                title=subject,
                body=body,
            )
    except IntegrityError:
        return ReminderReport(reason=f"The {threshold} reminder for this secret went already.")
    count = len(recipients)
    logger.info(
        "Secret-expiry reminder %s queued for %s recipient%s", threshold, count, "s"[: count != 1]
    )
    return ReminderReport(
        threshold=threshold,
        recipients=recipients,
        subject=subject,
        reason=""
        if recipients
        else "No administrator has an e-mail address and no Alert recipients are set: it "
        "went only to the alert destinations outside mail (Administration > Alerts), if any.",
    )
