"""Beat's sweep: alerts whose first attempt failed (or whose sender died) go again."""

from __future__ import annotations

from celery import shared_task

from alerting.service import alerts_deliver_due


@shared_task(ignore_result=True)
def deliver_alerts() -> None:
    alerts_deliver_due()
