"""Django's ``sendtestemail``, saying what it queued and where to watch it go.

With the outbox as ``EMAIL_BACKEND`` the command only writes rows: Django's own prints
nothing, which reads as "sent" when nothing has left yet.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.commands import sendtestemail
from django.urls import reverse

from smtp_settings.links import console_url

OUTBOX_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


def _recipients(count: int) -> str:
    return f"{count} recipient{'' if count == 1 else 's'}"


class Command(sendtestemail.Command):
    help = (
        "Queue a test message to the given addresses (and the site's managers or admins) "
        "and say where to watch its delivery."
    )

    def handle(self, *args: Any, **kwargs: Any) -> None:
        super().handle(*args, **kwargs)
        queued = []
        if kwargs["email"]:
            queued.append(f"{_recipients(len(kwargs['email']))}: {', '.join(kwargs['email'])}")
        for option, addresses in (("managers", settings.MANAGERS), ("admins", settings.ADMINS)):
            if kwargs[option]:
                queued.append(f"the site's {option} ({_recipients(len(addresses))})")
        what = "; ".join(queued)
        if settings.EMAIL_BACKEND != OUTBOX_BACKEND:
            self.stdout.write(f"Sent a test message to {what} with {settings.EMAIL_BACKEND}.")
            return
        self.stdout.write(
            f"Queued a test message for {what}. The worker delivers it with Manage SMTP's "
            "saved settings; watch it in Administration > Manage SMTP > Outbox: "
            f"{console_url(reverse('smtp_settings:outbox'))}"
        )
