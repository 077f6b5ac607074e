"""Alerts outside mail: raise an occurrence once, deliver it to every destination from
whichever process noticed it, retry what failed, and keep the destinations.

Delivery never depends on the worker or on the mail being healthy: a raise starts a short
thread in the raising process (a page, a task, beat) once its transaction commits, and
beat's sweep retries what is still waiting. A destination that fails is recorded on its
row and retried; it never raises into the caller.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from activity.models import Kind
from activity.service import activity_record
from alerting import notifier
from alerting.models import Alert, Destination, Notice, NoticeState
from smtp_settings import crypto

logger = logging.getLogger(__name__)

# One send's whole deadline: a click on "Send a test alert" waits this long at most.
SEND_SECONDS = 10.0
# After a failure: 1, 2, 5, 10 and 30 minutes, then hourly, until the attempts run out.
_RETRY_MINUTES = (1, 2, 5, 10, 30, 60, 60, 60)
_MAX_ATTEMPTS = len(_RETRY_MINUTES) + 1
# A sender's claim outlives its send; a process that died mid-send frees the notice then.
_CLAIM = timedelta(seconds=SEND_SECONDS + 30)


def alert_raise(
    *, key: str, kind: str, title: str, body: str, drops_pending: Iterable[str] = ()
) -> bool:
    """Record an occurrence and send it to every destination, unless ``key`` was raised
    before (by any process): then nothing happens. Pending notices of the ``drops_pending``
    kinds are not delivered any more (what they said is no longer true). Returns whether
    this call raised it."""
    with transaction.atomic():
        dropped = Notice.objects.filter(
            alert__kind__in=list(drops_pending), state=NoticeState.PENDING
        ).update(state=NoticeState.DROPPED, claimed_until=None)
        alert, created = Alert.objects.get_or_create(
            key=key[:200], defaults={"kind": kind, "title": title[:200], "body": body}
        )
        notices = []
        if created:
            now = timezone.now()
            notices = Notice.objects.bulk_create(
                Notice(alert=alert, destination=destination, next_attempt_at=now)
                for destination in Destination.objects.all()
            )
    if dropped:
        logger.info("%s undelivered alert(s) no longer true after %s: not sent", dropped, kind)
    if notices:
        transaction.on_commit(lambda: _deliver_in_background(alert_id=alert.pk))
    return created


def alerts_deliver_due(*, alert_id: int | None = None, now: datetime | None = None) -> int:
    """Send the notices that are due (of one alert, or all); returns how many went."""
    now = now or timezone.now()
    due = Notice.objects.filter(state=NoticeState.PENDING, next_attempt_at__lte=now).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )
    if alert_id is not None:
        due = due.filter(alert_id=alert_id)
    sent = 0
    for notice_id in list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:100]):
        if _claim(notice_id, now=timezone.now()):
            sent += _send(Notice.objects.select_related("alert", "destination").get(pk=notice_id))
    return sent


def _claim(notice_id: int, *, now: datetime) -> bool:
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    return bool(
        Notice.objects.filter(free, pk=notice_id, state=NoticeState.PENDING).update(
            claimed_until=now + _CLAIM
        )
    )


def _send(notice: Notice) -> int:
    alert = notice.alert
    outcome = _send_to(
        notice.destination, title=alert.title, body=alert.body, severity=severity_of(alert.kind)
    )
    notice.attempts += 1
    notice.claimed_until = None
    if outcome.ok:
        notice.state, notice.sent_at, notice.last_error = NoticeState.SENT, timezone.now(), ""
    else:
        notice.last_error = outcome.answer
        if notice.attempts >= _MAX_ATTEMPTS:
            notice.state = NoticeState.FAILED
        else:
            wait = timedelta(minutes=_RETRY_MINUTES[notice.attempts - 1])
            notice.next_attempt_at = timezone.now() + wait
    notice.save(update_fields=[
        "attempts", "claimed_until", "state", "sent_at", "last_error", "next_attempt_at"
    ])  # fmt: skip
    return int(outcome.ok)


def severity_of(kind: str) -> str:
    """Stopped, failed or held is a failure; a secret running out a warning; a return good news."""
    if kind.endswith((".quiet", ".failed", ".held")):
        return "failure"
    if kind == "secret.expiry":
        return "warning"
    if kind.endswith((".back", ".recovered", ".released")):
        return "success"
    return "info"


def _send_to(
    destination: Destination, *, title: str, body: str, severity: str = "info"
) -> notifier.Outcome:
    if isinstance(destination.url, str):
        outcome = notifier.send(
            destination.url,
            title=title,
            body=body,
            deadline_seconds=SEND_SECONDS,
            severity=severity,
        )
    else:
        outcome = notifier.Outcome(
            False, "The stored URL cannot be decrypted with the configured keys: add it again."
        )
    now = timezone.now()
    if outcome.ok:
        Destination.objects.filter(pk=destination.pk).update(last_sent_at=now)
    else:
        logger.warning("Alert to %r not delivered: %s", destination.label, outcome.answer)
        Destination.objects.filter(pk=destination.pk).update(
            last_failed_at=now, last_error=outcome.answer
        )
    return outcome


# The delivery threads still running in this process. A process that raised an alert waits
# for them when it exits (a daemon thread dies with it: `manage.py
# send_secret_expiry_reminders` ended before its alerts left, and beat's sweep sent them
# minutes later).
_in_flight: set[threading.Thread] = set()
_in_flight_lock = threading.Lock()


def _deliver_in_background(*, alert_id: int) -> None:
    def deliver() -> None:
        try:
            alerts_deliver_due(alert_id=alert_id)
        except Exception:  # a thread has nobody to raise to; beat's sweep retries
            logger.exception("Alert %s not sent now; beat's sweep retries it", alert_id)
        finally:
            connection.close()
            with _in_flight_lock:
                _in_flight.discard(threading.current_thread())

    thread = threading.Thread(target=deliver, name=f"alert-{alert_id}", daemon=True)
    with _in_flight_lock:
        _in_flight.add(thread)
    thread.start()


def alerts_in_flight_wait(*, deadline_seconds: float = SEND_SECONDS + 5) -> int:
    """Wait, within one deadline for all, for this process's alert deliveries to end; returns
    how many are still running then (beat's sweep sends what they did not)."""
    end = time.monotonic() + deadline_seconds
    with _in_flight_lock:
        running = list(_in_flight)
    for thread in running:
        thread.join(max(0.0, end - time.monotonic()))
    return sum(thread.is_alive() for thread in running)


atexit.register(alerts_in_flight_wait)


# -- destinations (the Alerts page) --------------------------------------------------------


# Where warnings go is security-relevant (a destination added by someone else reads every
# alert, one removed silences them): each change is in Activity, with who and from where.


def destination_add(
    *, label: str, url: str, actor: Any = None, address: str | None = None
) -> Destination:
    """Raises notifier.UnusableDestination for a URL Apprise cannot use."""
    reading = notifier.read(url)
    destination = Destination.objects.create(
        label=label, url=url.strip(), service=reading.service, masked_url=reading.masked_url
    )
    activity_record(
        kind=Kind.ALERT_DESTINATION_ADDED,
        summary=f"Alert destination “{label}” added: {reading.service}, {reading.masked_url}.",
        actor=actor,
        address=address,
    )
    return destination


def destination_remove(
    *, destination_id: int, actor: Any = None, address: str | None = None
) -> bool:
    destination = Destination.objects.filter(pk=destination_id).first()
    if destination is None:
        return False
    destination.delete()
    activity_record(
        kind=Kind.ALERT_DESTINATION_REMOVED,
        summary=f"Alert destination “{destination.label}” removed "
        f"({destination.service}, {destination.masked_url}): it receives no more alerts.",
        actor=actor,
        address=address,
    )
    return True


def destination_test(
    *, destination: Destination, actor: Any = None, address: str | None = None
) -> notifier.Outcome:
    outcome = _send_to(
        destination,
        title="Test alert from SEI Administration",
        body="This destination receives the console's alerts: secret expiry, mail health, "
        "a held outbox. Nothing needs doing.",
    )
    result = "delivered" if outcome.ok else f"not delivered: {outcome.answer}"
    activity_record(
        kind=Kind.ALERT_DESTINATION_TESTED,
        summary=f"Test alert to “{destination.label}” {result}",
        actor=actor,
        address=address,
    )
    return outcome


def recent_alerts(*, limit: int = 20) -> list[Alert]:
    return list(
        Alert.objects.prefetch_related("notices__destination").order_by("-raised_at", "-pk")[:limit]
    )


def decryptable(destination: Destination) -> bool:
    return not isinstance(destination.url, crypto.UnreadableSecret)
