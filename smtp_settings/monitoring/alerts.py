"""E-mail to administrators before mail can stop, and who receives it.

Alerts go out through the outbox, so while the settings are broken they wait there
(held) and leave as soon as working settings are saved.
"""

from __future__ import annotations

from django.core.mail import EmailMessage
from django.urls import reverse

from smtp_settings.links import ALERT_HEADER, console_url
from smtp_settings.models import SmtpSettings
from smtp_settings.permissions import administrators
from smtp_settings.validators import parse_addresses


def manage_smtp_url() -> str:
    return console_url(reverse("smtp_settings:manage"))


def alert_recipients(*, settings_row: SmtpSettings) -> list[str]:
    """Every active administrator with an e-mail address, then the Alert recipients."""
    admins = (
        administrators()
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )
    recipients: list[str] = []
    for address in [*admins, *parse_addresses(settings_row.alert_recipients)]:
        if address.lower() not in (known.lower() for known in recipients):
            recipients.append(address)
    return recipients


ALERT_SUBJECT_PREFIX = "[SEI Administration] "


def alert_subject(subject: str) -> str:
    """The subject an alert e-mail carries (what the outbox's withdrawals match)."""
    return f"{ALERT_SUBJECT_PREFIX}{subject}"


def alert_send(*, subject: str, body: str, recipients: list[str]) -> None:
    # One message each: administrators do not see each other's addresses. Marked, so that
    # the outbox knows its own alerts.
    for address in recipients:
        EmailMessage(
            alert_subject(subject), body, None, [address], headers={ALERT_HEADER: "yes"}
        ).send()
