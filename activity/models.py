"""One row per thing that happened: sign-ins, settings changes, validation runs, outbox
actions and changes to users. Rows hold plain words, never a secret."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    SIGNIN_SUCCEEDED = "signin.succeeded", "Signed in"
    SIGNIN_FAILED = "signin.failed", "Sign-in failed"
    TWO_FACTOR_ENROLLED = "2fa.enrolled", "Two-factor sign-in set up"
    TWO_FACTOR_FAILED = "2fa.failed", "Wrong sign-in code"
    TWO_FACTOR_RESET = "2fa.reset", "Two-factor sign-in reset"
    BACKUP_CODE_USED = "2fa.backup_code_used", "Backup code used"
    BACKUP_CODES_RENEWED = "2fa.backup_codes_renewed", "New backup codes"
    PASSWORD_CHANGED = "password.changed", "Password changed"
    PASSWORD_WRONG = "password.wrong", "Wrong current password"
    PASSWORD_RESET_REQUESTED = "password.reset_requested", "Password reset e-mail requested"
    PASSWORD_RESET_COMPLETED = "password.reset_completed", "Password reset completed"
    SETTINGS_SAVED = "settings.saved", "SMTP settings saved"
    CREDENTIALS_CHANGED = "credentials.changed", "Credentials changed"
    CREDENTIAL_FALLBACK = "credentials.fallback", "Credential refused, the other one used"
    VALIDATION_STARTED = "validation.started", "Validation started"
    OUTBOX_HELD = "outbox.held", "Outbox held"
    OUTBOX_RELEASED = "outbox.released", "Outbox released"
    OUTBOX_RETRIED = "outbox.retried", "Message retried"
    OUTBOX_DISCARDED = "outbox.discarded", "Message discarded"
    OUTBOX_FAILED = "outbox.failed", "Message failed for good"
    OUTBOX_FALLBACK = "outbox.fallback", "Sending through the fallback connection"
    ALERT_DESTINATION_ADDED = "alerts.destination_added", "Alert destination added"
    ALERT_DESTINATION_REMOVED = "alerts.destination_removed", "Alert destination removed"
    ALERT_DESTINATION_TESTED = "alerts.destination_tested", "Test alert sent"
    USER_ADDED = "user.added", "User added"
    USER_DEACTIVATED = "user.deactivated", "User deactivated"
    USER_REACTIVATED = "user.reactivated", "User reactivated"
    USER_CHANGED = "user.changed", "Name or e-mail changed"
    ROLE_GRANTED = "user.role_granted", "Administrator role granted"
    ROLE_REMOVED = "user.role_removed", "Administrator role removed"


class Entry(models.Model):
    at = models.DateTimeField(default=timezone.now)
    # Who acted; for sign-ins, whose account it was. The name stays if the user goes.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    kind = models.CharField(max_length=40, choices=Kind.choices)
    summary = models.CharField(max_length=500)
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "entries"
        # What Administration > Activity filters on: a date range, optionally one person.
        # The id breaks ties in the page's order, so it is in the indexes too: without it
        # the database sorts the whole trail to find the newest fifty.
        indexes = [
            models.Index(fields=["-at", "-id"], name="activity_at"),
            models.Index(fields=["actor", "-at", "-id"], name="activity_actor_at"),
            models.Index(fields=["kind", "-at", "-id"], name="activity_kind_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name or 'system'}: {self.summary}"
