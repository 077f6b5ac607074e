"""The fallback connection (issue 20 point 6): when the primary cannot deliver for a reason
that is not the message's (credentials refused, SMTP AUTH disabled, the server unreachable
past its deadline), the outbox delivers through the second saved connection instead of
holding, and says so once (an alert, the banner).

A drain that saw the primary fail sends the rest of its messages through the fallback
without asking the primary again; the next drain asks the primary first, so a saved
working primary takes over again by itself.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from smtp_settings.mail.backend import EmailBackend
from smtp_settings.mail.endpoint import MailSettings
from smtp_settings.mail.errors import CredentialFailure, DeliveryError, TemporaryFailure
from smtp_settings.models import Delivery, DeliveryState
from smtp_settings.sending import saved_fallback_settings
from smtp_settings.signals import alert_raised

logger = logging.getLogger(__name__)

PRIMARY = "primary"
FALLBACK = "fallback"
# Temporary failures that mean "the primary cannot be reached", not "try this message later".
_UNREACHABLE_KINDS = frozenset({"timeout", "refused", "unreachable", "dns", "disconnected"})


def takes_over_from(error: DeliveryError) -> bool:
    """Whether ``error`` is the primary's fault, one the fallback may get around."""
    if error.disposition == "hold":
        return True
    return (
        isinstance(error, TemporaryFailure)
        and not error.answer
        and error.kind in _UNREACHABLE_KINDS
    )


class Fallback:
    """One drain's fallback backend, built when first needed."""

    def __init__(self) -> None:
        self._backend: EmailBackend | None = None
        self._loaded = False
        self.mail: MailSettings | None = None
        # The primary's failure in this drain: later messages go straight to the fallback.
        self.primary_down: DeliveryError | None = None

    def available(self) -> bool:
        if not self._loaded:
            self._loaded = True
            try:
                self.mail = saved_fallback_settings()
            except CredentialFailure as failure:
                # Saved but unusable: the primary's failure is handled (and heard) as usual.
                logger.warning("Outbox: the fallback connection cannot be used: %s", failure)
            if self.mail is not None:
                timeout = float(settings.SMTP_NETWORK_TIMEOUT_SECONDS)
                self._backend = EmailBackend(mail_settings=self.mail, timeout=timeout)
        return self._backend is not None

    def deliver(self, message: EmailMessage) -> tuple[str, str]:
        """(answer, mailbox) of the message sent through the fallback; ``DeliveryError``."""
        if self._backend is None:
            raise RuntimeError("no fallback connection")
        mailbox = self._backend.mailbox_for(message)
        self._backend.ensure_session(mailbox)
        return self._backend.deliver(message), mailbox

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def announce_if_new(delivery_pk: int, error: DeliveryError, cause: str) -> None:
    """Alert once per episode: when the message sent before this one went by the primary
    (or none was sent yet)."""
    before = (
        Delivery.objects.filter(state=DeliveryState.SENT)
        .exclude(pk=delivery_pk)
        .order_by("-sent_at", "-pk")
        .values_list("connection", flat=True)
        .first()
    )
    if before == FALLBACK:
        return
    since = timezone.localtime()
    title = "Mail is sent through the fallback connection"
    body = (
        f"Since {since:%Y-%m-%d %H:%M %Z} the outbox sends through the fallback connection: "
        f"the primary cannot deliver. {cause or error.message} Fix the primary in Manage SMTP; "
        "once it works, it takes over again by itself."
    )
    logger.warning("Outbox: sending through the fallback connection: %s", error.message)
    alert_raised.send(
        sender=Delivery,
        key=f"fallback:{delivery_pk}",
        kind="outbox.fallback",
        title=title,
        body=body,
        drops_pending=(),
    )
