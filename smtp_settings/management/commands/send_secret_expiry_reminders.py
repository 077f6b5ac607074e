"""Run the secret-expiry reminder job once (beat runs it daily), and say what it did."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from smtp_settings.monitoring import reminders


class Command(BaseCommand):
    help = (
        "Send the secret-expiry reminder that is due today, if it has not gone yet, through "
        "the outbox; print what was sent and to whom, or why nothing was."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = reminders.secret_expiry_reminders_send()
        if not report.sent:
            self.stdout.write(f"No reminder sent. {report.reason}")
            return
        if not report.recipients:
            self.stdout.write(
                f'Raised the {report.threshold} reminder "{report.subject}". {report.reason}'
            )
            return
        self.stdout.write(f'Queued the {report.threshold} reminder "{report.subject}" for:')
        for address in report.recipients:
            self.stdout.write(f"  {address}")
        self.stdout.write(
            "The worker delivers it through Manage SMTP; Administration > Manage SMTP > Outbox "
            "shows how that went."
        )
