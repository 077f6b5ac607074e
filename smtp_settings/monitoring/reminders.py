"""Secret-expiry reminders: 30, 14, 7, 3 and 1 days before the Secret Expiration Date,
on the day, then weekly; each once per secret and threshold."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from smtp_settings.credentials.model import Credential, Role
from smtp_settings.credentials.model import Kind as CredentialKind
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


def _series(row: SmtpSettings, credential: Credential | None = None) -> str:
    """Names one credential and one date (no secret material): a change starts a new series.
    The credential in use defaults: for a secret, the same name as before credentials
    became rows (a reminder that went before the migration does not go again)."""
    added = credential.added_at if credential is not None else row.client_secret_replaced_at
    expires = credential.expires_on if credential is not None else row.secret_expiration_date
    replaced = added.isoformat() if added else ""
    text = f"{row.client_id}|{row.token_endpoint}|{replaced}|{expires}"
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


def _when(expires: date, today: date) -> tuple[str, str]:
    days = (expires - today).days
    if days > 1:
        return f"expires on {expires:%Y-%m-%d}, in {days} days", f"expires in {days} days"
    if days == 1:
        return f"expires tomorrow, {expires:%Y-%m-%d}", "expires tomorrow"
    if days == 0:
        return f"expires today, {expires:%Y-%m-%d}", "expires today"
    return f"expired on {expires:%Y-%m-%d}, {-days} days ago", f"expired {-days} days ago"


def _reminder_text(
    row: SmtpSettings, credential: Credential, *, today: date, ready: Credential | None
) -> tuple[str, str]:
    """The reminder for one credential; ``ready``: a next credential that passed its
    Validate, so that what is left is a promotion, not an alarm."""
    expires = credential.expires_on
    assert expires is not None
    when, subject = _when(expires, today)
    certificate = credential.kind == CredentialKind.CERTIFICATE
    what = f"certificate {credential.thumbprint}" if certificate else "client secret"
    tenant = microsoft.tenant_from_token_endpoint(row.token_endpoint) or row.token_endpoint
    stored = f"{timezone.localtime(credential.added_at):%Y-%m-%d %H:%M %Z}"
    role = "in use" if credential.role == Role.IN_USE else "next (not in use yet)"
    expired = (expires - today).days < 0
    if ready is not None:
        consequence = (
            f"The next credential ({ready.name}) passed Validate: nothing stops yet, and "
            "what is left is the switch."
        )
        todo = f"""  1. Open Manage SMTP > Credentials: {manage_smtp_url()}#credentials
  2. Make {ready.name} the one in use.
  3. Remove the old {what} there, then delete it in Entra ID (App registrations >
     the app > Certificates & secrets) too."""
        subject = f"{subject}: the next credential is ready, make it the one in use"
    else:
        refusal = "AADSTS700027" if certificate else "AADSTS7000222"
        consequence = (
            f"Entra ID now refuses it ({refusal}): the console's mail waits in its outbox "
            "until a working credential is in use."
            if expired and credential.role == Role.IN_USE
            else f"When it expires, Entra ID refuses it ({refusal})"
            + (
                " and the console's mail stops until a new one is in use."
                if credential.role == Role.IN_USE
                else "."
            )
        )
        todo = _todo_without_next(certificate)
    body = f"""The {what} that SEI Administration uses to send e-mail through
Microsoft 365 {when}. {consequence}

The credential
  Application (client) ID: {row.client_id}
  Directory (tenant):      {tenant}
  Sender:                  {row.sender_email}
  Role:                    {role}
  Stored in the console:   {stored}
  Expires:                 {expires:%Y-%m-%d}

What to do
{todo}

You receive this as an administrator of SEI Administration's mail settings, or because
your address is listed under Alert recipients. Reminders come 30, 14, 7, 3 and 1 days
before the date, on the day, and every week after it until a new credential is in use.
"""
    noun = "certificate" if certificate else "client secret"
    return f"The SMTP {noun} {subject}", body


def _todo_without_next(certificate: bool) -> str:
    if certificate:
        return f"""  1. Open Manage SMTP > Credentials: {manage_smtp_url()}#credentials
  2. Create a certificate and download its .cer; upload it in Entra ID (App
     registrations > the app > Certificates & secrets > Certificates).
  3. Validate the new certificate there; when every step passes, make it the one in use.
  4. Remove the old certificate there, and delete it in Entra ID too."""
    return f"""  1. In the Microsoft Entra admin center, open App registrations, the app with the
     client ID above, then Certificates & secrets, and add a new client secret (or,
     recommended, create a certificate in Manage SMTP > Credentials instead).
  2. Copy its Value at once (Entra shows it only this one time; the Secret ID is not
     the value) and note its Expires date.
  3. Open Manage SMTP: {manage_smtp_url()}
     Paste the Value into Client Secret and the date into Secret Expiration Date.
  4. Click Validate; when every step passes, click Save.
  5. Once mail goes out with the new secret, delete the old one in Entra ID."""


def secret_expiry_reminders_send(*, now: datetime | None = None) -> ReminderReport:
    """Send the reminders due today, once per credential and threshold: the credential in
    use and the next one each have their own series. Says what happened to the one in use
    (or, when none of it was due, to the next one)."""
    row = SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).first()
    if row is None or row.auth_type != AuthType.OAUTH2:
        return ReminderReport(reason="No OAuth 2.0 settings are saved: no secret to watch.")
    if not row.secret_expiration_alert:
        return ReminderReport(reason="Secret Expiration Alert is off.")
    in_use, upcoming = row.credential(AuthType.OAUTH2), row.credential(AuthType.OAUTH2, Role.NEXT)
    ready = upcoming if upcoming is not None and upcoming.check_passed else None
    dated = [
        (credential, ready if credential is in_use else None)
        for credential in (in_use, upcoming)
        if credential is not None and credential.expires_on is not None
    ]
    if not dated:
        return ReminderReport(reason="No Secret Expiration Date is saved.")
    today = timezone.localdate(now)
    reports = [
        _credential_reminder(row, credential, today=today, now=now, ready=next_ready)
        for credential, next_ready in dated
    ]
    return next((report for report in reports if report.sent), reports[0])


def _credential_reminder(
    row: SmtpSettings,
    credential: Credential,
    *,
    today: date,
    now: datetime | None,
    ready: Credential | None,
) -> ReminderReport:
    expires = credential.expires_on
    assert expires is not None
    threshold = reminder_threshold(expires=expires, today=today)
    what = "certificate" if credential.kind == CredentialKind.CERTIFICATE else "secret"
    if threshold is None:
        days = (expires - today).days
        return ReminderReport(
            reason=f"The {what} expires in {days} days; the first reminder goes 30 days before."
        )
    recipients = alert_recipients(settings_row=row)
    if not recipients:
        # Still raised: alert destinations outside mail (Administration > Alerts) get it.
        logger.warning("A secret-expiry reminder is due, but no administrator has an address")
    subject, body = _reminder_text(row, credential, today=today, ready=ready)
    series = _series(row, credential)
    try:
        with transaction.atomic():
            # The row first: a second job (or a second beat) stops here, on the constraint.
            SecretReminder.objects.create(
                series=series,
                threshold=threshold,
                expires_on=expires,
                recipients=recipients,
                sent_at=now or timezone.now(),
            )
            alert_send(subject=subject, body=body, recipients=recipients)
            alert_raised.send(
                sender=SecretReminder,
                key=f"secret-expiry:{series}:{threshold}",
                kind="secret.expiry",
                title=subject,
                body=body,
            )
    except IntegrityError:
        return ReminderReport(reason=f"The {threshold} reminder for this {what} went already.")
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
