"""post_office's ``send_queued_mail``, switched off: the console's outbox is the only sender.

post_office's command sends every row whose status is "queued", and that status knows
nothing of what the outbox decided: a message held until a working secret is saved, one
deferred by a temporary answer or the per-mailbox rate, one waiting for a connection slot
or claimed by a worker right now. Run from cron as post_office's documentation suggests, it
would send all of those around the holds and limits (and twice, for the claimed ones). This
command shadows it (smtp_settings comes before post_office in INSTALLED_APPS) and refuses.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Not used by this console: its Celery worker delivers the outbox. This command "
        "refuses, so that nothing sends mail around the outbox's holds and limits."
    )

    def add_arguments(self, parser: Any) -> None:
        # post_office's options, accepted so that an existing cron line gets the refusal
        # below rather than an argument error.
        parser.add_argument("-p", "--processes", type=int, default=1)
        parser.add_argument("-L", "--lockfile")
        parser.add_argument("-l", "--log-level", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        raise CommandError(
            "send_queued_mail is switched off in SEI Administration: the console's Celery "
            "worker delivers the outbox (make run starts one), keeping messages held while "
            "the credential is refused and within Exchange's per-mailbox limits. This command "
            "would send held and waiting messages around those rules. Remove it from cron; "
            "Administration > Manage SMTP > Outbox shows what is waiting and why."
        )
