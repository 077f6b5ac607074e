"""What the console alerts about, heard where it happens: Manage SMTP's alert signal
(reminders, the health check) and the activity trail's outbox entries."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from activity.models import Entry, Kind
from alerting.service import alert_raise
from smtp_settings.links import console_url
from smtp_settings.signals import alert_raised

OUTBOX_HELD, OUTBOX_RELEASED = "outbox.held", "outbox.released"


@receiver(alert_raised)
def _raised(sender: Any, **alert: Any) -> None:
    alert.pop("signal", None)
    alert_raise(**alert)


@receiver(post_save, sender=Entry)
def _outbox_entry(sender: Any, instance: Entry, created: bool, **kwargs: Any) -> None:
    if not created or instance.kind not in (
        Kind.OUTBOX_HELD,
        Kind.OUTBOX_RELEASED,
        Kind.OUTBOX_FAILED,
    ):
        return
    outbox = console_url(reverse("smtp_settings:outbox"))
    since = f"{timezone.localtime(instance.at):%Y-%m-%d %H:%M %Z}"
    if instance.kind == Kind.OUTBOX_FAILED:
        alert_raise(
            key=f"outbox-failed:{instance.pk}",
            kind="outbox.failed",
            title="A message failed for good and will not be sent",
            body=f"At {since}. {instance.summary}\n\nThe message and how to retry it: {outbox}",
        )
    elif instance.kind == Kind.OUTBOX_HELD:
        alert_raise(
            key=f"outbox-held:{instance.pk}",
            kind=OUTBOX_HELD,
            title="Mail is held: nothing leaves the console's outbox",
            body=f"Since {since}. {instance.summary}\n\nWhat failed and how to fix it: {outbox}",
            drops_pending=(OUTBOX_RELEASED,),
        )
    else:
        alert_raise(
            key=f"outbox-released:{instance.pk}",
            kind=OUTBOX_RELEASED,
            title="Mail leaves again: the held messages were released",
            body=f"At {since}. {instance.summary}\n\nOutbox: {outbox}",
            drops_pending=(OUTBOX_HELD,),
        )
