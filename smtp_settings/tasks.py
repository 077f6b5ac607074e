"""Thin Celery tasks: they receive ids, never settings values or secrets, and call a service."""

from __future__ import annotations

from celery import Task, shared_task

from smtp_settings import assistant, heartbeats, outbox, validation
from smtp_settings.monitoring import fallback_check, health_check, reminders


@shared_task(bind=True, ignore_result=True)
def worker_heartbeat(self: Task) -> None:
    """Scheduled by beat: shows on the Administration page that the background processes run."""
    heartbeats.worker_heartbeat_record(worker=self.request.hostname or "worker")


@shared_task(name=validation.VALIDATE_TASK, ignore_result=True)
def validate_smtp_settings(run_id: str) -> None:
    """Run a Validate request; the run row holds everything, the secret encrypted."""
    validation.validation_run_execute(run_id=run_id)


@shared_task(ignore_result=True)
def purge_validation_runs() -> None:
    """Scheduled by beat: old validation runs go, the latest 50 stay."""
    validation.validation_runs_purge()


@shared_task(ignore_result=True)
def expire_abandoned_validation_runs() -> None:
    """Scheduled by beat: a run whose worker died must not keep its secret."""
    validation.validation_runs_expire_abandoned()


@shared_task(name=outbox.DELIVER_TASK, ignore_result=True)
def deliver_outbox() -> None:
    """Deliver due outbox messages; enqueued when mail is queued, and by beat for retries."""
    outbox.outbox_deliver_due()


@shared_task(ignore_result=True)
def purge_outbox() -> None:
    """Scheduled by beat: sent messages older than the retention period go."""
    outbox.outbox_purge()


@shared_task(ignore_result=True)
def send_secret_expiry_reminders() -> None:
    """Scheduled by beat, daily: the secret-expiry reminder that is due, once."""
    reminders.secret_expiry_reminders_send()


@shared_task(name=health_check.HEALTH_CHECK_TASK, ignore_result=True)
def mail_health_check() -> None:
    """Scheduled by beat, daily, and started from Manage SMTP: a token with the saved
    settings, the primary connection's and the fallback connection's."""
    health_check.mail_health_check_run()
    fallback_check.fallback_health_check_run()


@shared_task(ignore_result=True)
def purge_setup_secrets() -> None:
    """Scheduled by beat: a secret the setup assistant held past its time goes."""
    assistant.setup_secrets_purge()
