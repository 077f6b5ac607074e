"""What the console alerts about, heard where it happens: Manage SMTP's alert signal
(reminders, the health check, the outbox's turns)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from alerting.service import alert_raise
from smtp_settings.signals import alert_raised


@receiver(alert_raised)
def _raised(sender: Any, **alert: Any) -> None:
    alert.pop("signal", None)
    alert_raise(**alert)
