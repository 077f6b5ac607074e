"""Where alerts go besides e-mail, what was alerted, and how each delivery went."""

from __future__ import annotations

from django.db import models

from smtp_settings.fields import EncryptedTextField


class Destination(models.Model):
    """An Apprise URL (Teams, Slack, Discord, ntfy, a webhook, ...). The URL carries the
    service's token, so it is stored encrypted and shown only masked."""

    label = models.CharField(max_length=80)
    url = EncryptedTextField(null=False, blank=False)
    # What the page shows instead of the URL: the service, and the URL with its tokens masked.
    service = models.CharField(max_length=80)
    masked_url = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["label", "pk"]

    def __str__(self) -> str:
        return self.label


class Alert(models.Model):
    """One occurrence of something administrators must hear about. ``key`` names the
    occurrence (a reminder's secret and threshold, a health check's result, an outbox
    hold): raising the same key twice, from any process, alerts once."""

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField()
    raised_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-raised_at", "-pk"]

    def __str__(self) -> str:
        return self.title


class NoticeState(models.TextChoices):
    PENDING = "pending", "Waiting"
    SENT = "sent", "Delivered"
    FAILED = "failed", "Failed"
    # Made untrue before it left (mail works again): never delivered.
    DROPPED = "dropped", "No longer true"


class Notice(models.Model):
    """An alert on its way to one destination."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notices")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=NoticeState, default=NoticeState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A sender's claim: another process leaves the notice alone until it lapses.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alert", "destination"], name="one_notice_each")
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notice_due")]

    def __str__(self) -> str:
        return f"{self.alert_id} to {self.destination_id}: {self.state}"
