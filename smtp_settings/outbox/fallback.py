"""The fallback connection (issue 20 point 6): when the primary cannot deliver for a reason
that is not the message's (credentials refused, SMTP AUTH disabled, the server unreachable
past its deadline), the outbox delivers through the second saved connection instead of
holding, and says so once (an alert, the banner).

A drain that saw the primary fail sends the rest of its messages through the fallback
without asking the primary again; the next drain asks the primary first, so a saved
working primary takes over again by itself. The fallback keeps to Exchange's limits as
the primary does, for its own sender mailbox: a connection lease, a send slot, and a
server's Retry-After for every message to that mailbox. Each message's row says how each
connection did with it (``Delivery.routes``): the outbox page and the banners read it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from activity.models import Kind
from activity.service import activity_record
from smtp_settings import diagnosis
from smtp_settings.mail.backend import EmailBackend
from smtp_settings.mail.endpoint import MailSettings
from smtp_settings.mail.errors import CredentialFailure, DeliveryError, TemporaryFailure
from smtp_settings.models import Delivery, DeliveryState, route_text
from smtp_settings.outbox import throttle
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


class Postponed(Exception):
    """The fallback's mailbox is at a limit (every connection taken, or no send slot within
    the wait): the message goes back to the queue until ``until``, without an attempt."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"postponed until {until:%H:%M:%S}")
        self.until = until


@dataclass(frozen=True)
class Sent:
    answer: str
    mailbox: str
    route: str


class Fallback:
    """One drain's fallback backend, built when first needed, and the connection leases
    and send slots it holds for its mailboxes (renewed with the drain's own)."""

    def __init__(self, holder: str = "") -> None:
        self._backend: EmailBackend | None = None
        self._loaded = False
        self.mail: MailSettings | None = None
        # The primary's failure in this drain: later messages go straight to the fallback.
        self.primary_down: DeliveryError | None = None
        self.holder = holder
        self.leases: dict[str, int] = {}
        self._slots: dict[str, deque[datetime]] = {}

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

    def deliver(
        self, message: EmailMessage, *, deadline: float, ahead: int, waits: tuple[float, float]
    ) -> Sent:
        """``message`` through the fallback, within its mailbox's limits as the primary's
        drain keeps them (``waits``: how long to postpone while every connection is taken,
        and how long a send slot may be waited for here). ``Postponed`` when a limit says
        later; ``DeliveryError`` when the fallback fails."""
        if self._backend is None or self.mail is None:
            raise RuntimeError("no fallback connection")
        lease_wait, inline_wait = waits
        mailbox = self._backend.mailbox_for(message)
        try:
            if not self._lease(mailbox):
                raise Postponed(timezone.now() + timedelta(seconds=lease_wait))
            # The session first: the slot then times the message itself, not the sign-in.
            self._backend.ensure_session(mailbox)
            at = self._slot(mailbox, ahead=ahead, inline_wait=inline_wait)
            wait = (at - timezone.now()).total_seconds()
            if time.monotonic() + wait > deadline:
                raise Postponed(at)
            if wait > 0:
                time.sleep(wait)
            answer = self._backend.deliver(message)
        except DeliveryError as error:
            if error.retry_after is not None:
                # As for the primary: every message to this mailbox waits as long.
                throttle.defer_mailbox(mailbox, error.retry_after)
            if error.disposition != "fail":
                self._drop(mailbox)
            raise
        return Sent(answer, mailbox, route_text(self.mail, mailbox))

    def _lease(self, mailbox: str) -> bool:
        if mailbox not in self.leases:
            lease = throttle.acquire_lease(mailbox, self.holder)
            if lease is None:
                return False
            self.leases[mailbox] = lease
        return True

    def _slot(self, mailbox: str, *, ahead: int, inline_wait: float) -> datetime:
        """This message's send slot: one reserved ahead, or slots for the rest of the
        drain's batch reserved in one transaction."""
        reserved = self._slots.setdefault(mailbox, deque())
        if not reserved:
            slots = throttle.reserve_slots(mailbox, count=max(ahead, 1), max_wait=inline_wait)
            if not slots.times:
                raise Postponed(slots.next_at)
            reserved.extend(slots.times)
        return reserved.popleft()

    def _drop(self, mailbox: str) -> None:
        if self._backend is not None:
            self._backend.close_session(mailbox)
        self._slots.pop(mailbox, None)
        lease = self.leases.pop(mailbox, None)
        if lease is not None:
            throttle.release_leases([lease])

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        throttle.release_leases(list(self.leases.values()))
        self.leases.clear()


# -- what the rows say: how each connection did ------------------------------------------


def _failed_leg(
    mail: MailSettings | None, error: DeliveryError, finding: diagnosis.Finding | None
) -> dict[str, Any]:
    return {
        "route": route_text(mail) if mail is not None else "",
        "error": error.message,
        "answer": error.answer,
        "diagnosis": finding.key if finding else "",
        "cause": finding.cause if finding else "",
        "fix": finding.fix if finding else "",
        "commands": finding.commands if finding else [],
    }


def primary_failed(
    mail: MailSettings | None, error: DeliveryError, finding: diagnosis.Finding | None
) -> dict[str, Any]:
    """The routes of a message the primary could not deliver: its failure, with the
    diagnosis's commands (the fix text points to them)."""
    return {PRIMARY: _failed_leg(mail, error, finding)}


def sent_instead(
    error: DeliveryError,
    finding: diagnosis.Finding | None,
    *,
    primary: MailSettings | None,
    sent: Sent,
) -> dict[str, Any]:
    """The columns of a message the fallback sent: why the primary was skipped (its failure
    and diagnosis) and how the message left."""
    return {
        "last_error": f"Sent through the fallback connection ({sent.route}); the primary "
        f"connection could not deliver: {error.message}",
        "diagnosis": finding.key if finding else "",
        "cause": finding.cause if finding else "",
        "fix": finding.fix if finding else "",
        "routes": {
            PRIMARY: _failed_leg(primary, error, finding),
            FALLBACK: {"route": sent.route, "answer": sent.answer},
        },
    }


def both_failed(
    error: DeliveryError,
    second: DeliveryError,
    *,
    primary: MailSettings | None,
    fallback: MailSettings | None,
) -> tuple[DeliveryError, dict[str, Any]]:
    """The fallback failed too (``second``). What the message's row records: the failure
    that decides its fate (a message the fallback refuses fails alone; a fallback that
    names a time to come back (a 429's Retry-After) defers it until then; otherwise the
    primary's failure stands, a hold, with the fallback's named beside it: nothing is
    lost while an administrator has not acted), and how each connection did."""
    routes = {
        PRIMARY: _failed_leg(primary, error, diagnosis.diagnose_failure(error, primary)),
        FALLBACK: _failed_leg(fallback, second, diagnosis.diagnose_failure(second, fallback)),
    }
    if second.disposition == "fail" or (
        second.disposition == "defer" and second.retry_after is not None
    ):
        return second, routes
    # A new error: the drain's remembered one keeps its own text.
    stands = type(error)(
        f"{error.message} The fallback connection failed too: {second.message}",
        stage=error.stage,
        kind=error.kind,
        answer=error.answer,
        codes=error.codes,
        token_claims=error.token_claims,
        retry_after=error.retry_after,
    )
    return stands, routes


def note_routes(delivery_pk: int, state: str, routes: dict[str, Any]) -> None:
    """How each connection did, on the message's row; on every held row when it held them
    all (the banner reads the latest hold's)."""
    rows = (
        Delivery.objects.filter(state=DeliveryState.HELD)
        if state == DeliveryState.HELD
        else Delivery.objects.filter(pk=delivery_pk)
    )
    rows.update(routes=routes)


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
    activity_record(kind=Kind.OUTBOX_FALLBACK, summary=body)
    alert_raised.send(
        sender=Delivery,
        key=f"fallback:{delivery_pk}",
        kind="outbox.fallback",
        title=title,
        body=body,
        drops_pending=(),
    )
