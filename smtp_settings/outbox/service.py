"""The outbox: accept messages, deliver what is due, hold and release, retry, discard, purge.

Delivery runs in workers. Each message is claimed on its own (a row update that
only one worker can win) for ``SMTP_OUTBOX_CLAIM_SECONDS``, and a small thread of the
drain renews that claim and the drain's connection leases while its process lives: a
worker that dies leaves them to lapse within seconds, and the message is taken again.
What a failure means comes from the mail engine's error classes: defer with backoff,
hold every message until an administrator saves working settings, or fail this message.

At most one delivery task waits in the broker (``enqueue.after_commit_once``): a backlog
is drained by a few long tasks, not one task per message, so a Validate run finds a free
worker. A drain also hands its process over between two messages when interactive work
waits, and carries on in a new task.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter, deque
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Case, Count, Max, Q, Value, When, prefetch_related_objects
from django.utils import timezone
from post_office.models import STATUS, Attachment, Email, Log

from activity.models import Kind
from activity.service import activity_record
from smtp_settings import diagnosis, enqueue
from smtp_settings.links import ALERT_HEADER, headers_mark
from smtp_settings.mail.backend import EmailBackend
from smtp_settings.mail.endpoint import MailSettings
from smtp_settings.mail.errors import DeliveryError, TemporaryFailure
from smtp_settings.models import WITHDRAWN, Delivery, DeliveryState, route_text
from smtp_settings.outbox import fallback, priority, sent_marks, throttle, writes, written_ahead
from smtp_settings.sending import saved_mail_settings
from smtp_settings.signals import outbox_turned

logger = logging.getLogger(__name__)

DELIVER_TASK = "smtp_settings.tasks.deliver_outbox"
_MAX_BACKOFF_SECONDS = 3600.0
# How long a message waits when every connection to its mailbox is taken.
_LEASE_WAIT_SECONDS = 2.0
# How often a drain looks whether others wait for its process (interactive work, links).
_LOOK_EVERY_SECONDS = 0.01
# A rate-limited message waits in the worker up to this; a longer wait frees the worker
# (a Validate run may be queued behind) and the delivery continues in a later task.
_MAX_INLINE_WAIT_SECONDS = 3.0


def _due(now: Any) -> Q:
    return Q(state__in=Delivery.PENDING, next_attempt_at__lte=now) | Q(
        state=DeliveryState.SENDING, claimed_until__lt=now
    )


# -- accepting (the web, or whatever calls send_mail) -----------------------------------


def outbox_body_withheld(*, email: Email) -> bool:
    """Whether the outbox page must not show this message's text (a one-time link)."""
    return priority.carries_one_time_link(email.headers)


def outbox_is_alert(*, email_id: int) -> bool:
    """Whether this message is one of the console's alerts to administrators."""
    email = Email.objects.filter(pk=email_id).only("headers").first()
    return email is not None and headers_mark(email.headers, ALERT_HEADER)


def outbox_delivery_request(*, countdown: float = 0.0) -> None:
    """Ask a worker to deliver what is due, unless a delivery task already waits that starts
    no later (a backlog does not fill the broker with one task per message)."""
    enqueue.after_commit_once(DELIVER_TASK, countdown=countdown)


def outbox_delivery_request_if_pending() -> None:
    """Ask for delivery when messages wait or are being sent (a worker starting after a crash),
    even if a delivery task is said to wait: a killed worker may have taken it with it."""
    if Delivery.objects.filter(
        Q(state__in=Delivery.PENDING) | Q(state=DeliveryState.SENDING)
    ).exists():
        enqueue.after_commit_once(DELIVER_TASK, distrust_mark=True)


def outbox_accept(*, emails: list[Email]) -> None:
    """New messages join the queue, or wait with the held ones; a worker is asked to deliver."""
    hold = (
        Delivery.objects.filter(state=DeliveryState.HELD)
        .order_by("-updated_at")
        .values("last_error", "last_answer", "diagnosis", "cause", "fix", "routes")
        .first()
    )
    state = DeliveryState.HELD if hold else DeliveryState.QUEUED
    rows = Delivery.objects.bulk_create(
        Delivery(email=email, state=state, priority=priority.priority_of(email), **(hold or {}))
        for email in emails
    )
    if not hold:
        priority.mark_when_committed(row.priority for row in rows)
        outbox_delivery_request()


# -- delivering (worker) ----------------------------------------------------------------


def outbox_deliver_due(*, budget_seconds: float | None = None) -> Counter[str]:
    """Deliver due messages until none is due, the queue is held, a limit says wait, the
    budget is spent or interactive work waits for this process; then, if more is due within
    a minute (a postponed message, a deferred one, another worker's claim that may lapse),
    a later task carries on at that time."""
    budget = budget_seconds or settings.SMTP_OUTBOX_DRAIN_SECONDS
    sent_marks.sent_marks_catch_up_now_and_then()
    run = _DeliveryRun(deadline=time.monotonic() + budget)
    began = timezone.now()
    report = run.drain()
    if report["sent"]:
        # Mail left: whoever tells administrators learns that a released hold is over.
        outbox_turned.send(sender=Delivery, turn="sent", began=began)
    if run.handed_over:
        outbox_delivery_request()
        return report
    wait = _seconds_until_next_due()
    if wait is not None and run.resume_at is not None:
        # Postponed for a connection or a send slot: the other due messages most likely wait
        # for the same, so the continuation comes then rather than at once.
        wait = max(wait, (run.resume_at - timezone.now()).total_seconds())
    if wait is not None and wait < 60:  # later than that, beat's sweep is soon enough
        outbox_delivery_request(countdown=wait)
    return report


def _seconds_until_next_due() -> float | None:
    """When the next message falls due: a pending one's next attempt, or the end of a claim
    (a live holder renews it and sends; a dead one's lapses and the message is retried)."""
    now = timezone.now()
    pending = (
        Delivery.objects.filter(state__in=Delivery.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    claimed = (
        Delivery.objects.filter(state=DeliveryState.SENDING)
        .order_by("claimed_until")
        .values_list("claimed_until", flat=True)
        .first()
    )
    times = [at for at in (pending, claimed) if at is not None]
    if not times:
        return None
    return max((min(times) - now).total_seconds(), 0.0)


def _claim_batch(size: int) -> list[Delivery]:
    """Up to ``size`` due messages claimed for this drain in one transaction, one-time links
    first (a transaction per message was most of a drain's database time). Each row has one
    winner."""
    now = timezone.now()
    until = _claim_end()
    due = Delivery.objects.filter(_due(now)).order_by(*priority.CLAIM_ORDER)
    if connection.features.has_select_for_update_skip_locked:
        # PostgreSQL: rows another worker has locked are skipped.
        with transaction.atomic():
            candidates = list(
                due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:size]
            )
            if candidates:
                Delivery.objects.filter(_due(now), pk__in=candidates).update(
                    state=DeliveryState.SENDING, claimed_until=until
                )
    else:
        # SQLite: one writer at a time, and a writer that finds the lock taken sleeps a
        # millisecond or more. One statement, its SQL made before the write begins, picks and
        # claims the rows (under the lock: no other worker can take them in between).
        claim = Delivery.objects.filter(pk__in=due.values("pk")[:size])
        candidates = writes.run_returning_keys(
            writes.update(claim, state=DeliveryState.SENDING, claimed_until=until), Delivery
        )
    if not candidates:
        return []
    # Read after the commit (the rows are this drain's until the claim lapses): on SQLite
    # the transaction holds every writer's lock, and building the messages takes a while.
    claimed = list(
        Delivery.objects.filter(pk__in=candidates, state=DeliveryState.SENDING, claimed_until=until)
        .select_related("email")
        .order_by(*priority.CLAIM_ORDER)
    )
    _load_attachments([delivery.email for delivery in claimed])
    return claimed


def _load_attachments(emails: list[Email]) -> None:
    """The claimed messages' attachments, read before they are built: one query for which
    have any, one for theirs. Most have none, and Django's prefetch made a related manager
    and a queryset for each of them (a twentieth of a worker's time per message)."""
    through = Attachment.emails.through
    with_files = set(
        through.objects.filter(email_id__in=[email.pk for email in emails]).values_list(
            "email_id", flat=True
        )
    )
    prefetch_related_objects([email for email in emails if email.pk in with_files], "attachments")
    for email in emails:
        if email.pk not in with_files:
            # What the prefetch leaves for a message without attachments: an empty result.
            email._prefetched_objects_cache = {"attachments": Attachment.objects.none()}


def _release(pks: list[int]) -> None:
    """Claimed messages this drain will not send go back to the queue, due as they were."""
    if pks:
        Delivery.objects.filter(pk__in=pks, state=DeliveryState.SENDING).update(
            state=Case(
                When(attempts=0, then=Value(DeliveryState.QUEUED)),
                default=Value(DeliveryState.DEFERRED),
            ),
            claimed_until=None,
        )


def _claim_end() -> datetime:
    return timezone.now() + timedelta(seconds=settings.SMTP_OUTBOX_CLAIM_SECONDS)


def _backoff(attempts: int) -> timedelta:
    seconds = min(settings.SMTP_OUTBOX_RETRY_SECONDS * 2 ** (attempts - 1), _MAX_BACKOFF_SECONDS)
    # Jitter keeps many deferred messages from coming back in one burst.
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311  (not security)


def _record_sent(
    delivery: Delivery,
    answer: str,
    mailbox: str,
    marks: sent_marks.SentMarks,
    *,
    connection: str = fallback.PRIMARY,
    primary_failure: dict[str, str] | None = None,
    primary: MailSettings | None = None,
) -> None:
    # Written before the next message goes: a worker killed after this loses nothing
    # and sends nothing twice. Sent through the fallback, the row keeps why the primary
    # could not (``primary_failure``: last_error, diagnosis, cause, fix, routes); through
    # the ``primary`` connection's settings, the way it left, which its page names.
    # post_office's status and Log row follow with the drain's next marks (sent_marks).
    why = {"last_error": "", "diagnosis": "", "cause": "", "fix": "", "routes": {}}
    if primary is not None:
        why["routes"] = {fallback.PRIMARY: {"route": route_text(primary, mailbox)}}
    why.update(primary_failure or {})
    sent_at = timezone.now()
    writes.run_atomically(
        [
            writes.update_row(
                Delivery,
                delivery.pk,
                state=DeliveryState.SENT,
                attempts=delivery.attempts + 1,
                sent_at=sent_at,
                claimed_until=None,
                mailbox=mailbox,
                connection=connection,
                last_answer=answer,
                **why,
            )
        ]
    )
    marks.add(delivery.pk, answer, sent_at)


_ATTEMPT_RESULTS = {
    DeliveryState.SENT: "Sent",
    DeliveryState.DEFERRED: "Deferred: to be tried again",
    DeliveryState.HELD: "Held: the settings or credential were refused",
    DeliveryState.FAILED: "Failed: not tried again",
}


def outbox_attempts(*, email: Email) -> list[dict[str, Any]]:
    """The message's attempts, newest first, each with what it led to in words."""
    return [
        {
            "date": log.date,
            "result": _ATTEMPT_RESULTS.get(
                log.exception_type.split(":")[0] or log.get_status_display(),
                log.exception_type or log.get_status_display(),
            ),
            "answer": log.message,
        }
        for log in email.logs.order_by("-date", "-pk")
    ]


def _disposition(error: DeliveryError, attempts: int, mail: MailSettings | None) -> str:
    """What the failure means for this message: deferred, held (with every other) or
    failed."""
    disposition = error.disposition
    if disposition == "hold" and mail and not mail.use_sender_email and error.stage != "token":
        # Each From mailbox authenticates as itself: one without permission fails its
        # own messages, not everyone's.
        disposition = "fail"
    if disposition == "defer" and attempts >= settings.SMTP_OUTBOX_MAX_ATTEMPTS:
        disposition = "fail"
    return {
        "defer": DeliveryState.DEFERRED,
        "hold": DeliveryState.HELD,
        "fail": DeliveryState.FAILED,
    }[disposition]


def _ask_for_a_helper(mailbox: str) -> None:
    """One drain per connection a mailbox allows: while this one holds a lease and more are
    free, another worker process may help (at most one task waits for it)."""
    if throttle.leases_held(mailbox) < settings.SMTP_MAX_CONNECTIONS and (
        Delivery.objects.filter(_due(timezone.now())).exists()
    ):
        outbox_delivery_request()


def _finding(error: DeliveryError, mail: MailSettings | None) -> diagnosis.Finding | None:
    return diagnosis.diagnose_failure(error, mail)


def _via_fallback(run: _DeliveryRun, delivery: Delivery, error: DeliveryError) -> str:
    """The primary failed with ``error`` (not the message's fault): this message through the
    fallback connection, within its mailbox's limits. If that fails too, ``fallback.both_failed``
    says what stands."""
    run.fallback.primary_down = error
    try:
        sent = run.fallback.deliver(
            delivery.email.email_message(),
            deadline=run.deadline,
            ahead=len(run.batch),
            waits=(_LEASE_WAIT_SECONDS, _MAX_INLINE_WAIT_SECONDS),
        )
    except fallback.Postponed as limit:
        return run._postpone(delivery, limit.until)
    except DeliveryError as second:
        stands, routes = fallback.both_failed(
            error, second, primary=run.mail, fallback=run.fallback.mail
        )
        state = _failed(run, delivery, stands, "")
        fallback.note_routes(delivery.pk, state, routes)
        return state
    finding = _finding(error, run.mail)
    _record_sent(
        delivery,
        sent.answer,
        sent.mailbox,
        run.marks,
        connection=fallback.FALLBACK,
        primary_failure=fallback.sent_instead(error, finding, primary=run.mail, sent=sent),
    )
    fallback.announce_if_new(delivery.pk, error, finding.cause if finding else "")
    return "sent"


class _Renewer(threading.Thread):
    """Keeps a live drain's claims and connection leases from lapsing: they are short so that
    a killed worker's lapse soon, and only a process that still runs renews them."""

    def __init__(self, run: _DeliveryRun) -> None:
        super().__init__(name="outbox-renewer", daemon=True)
        self.run_ = run
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = settings.SMTP_OUTBOX_CLAIM_SECONDS / 4
        try:
            while not self.stopped.wait(interval):
                try:
                    throttle.renew_leases(
                        [*self.run_.leases.values(), *self.run_.fallback.leases.values()]
                    )
                    claimed = self.run_.claimed()
                    if claimed:
                        Delivery.objects.filter(pk__in=claimed, state=DeliveryState.SENDING).update(
                            claimed_until=_claim_end()
                        )
                except Exception as exc:  # the next round tries again; the drain goes on
                    logger.warning("Outbox: claims not renewed (%s)", type(exc).__name__)
        finally:
            # The thread's own database connection, which nothing else would close.
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        # Not waited for long: a renewal blocked on a lock must not hold the drain up.
        self.join(timeout=1)


class _DeliveryRun:
    def __init__(self, *, deadline: float) -> None:
        self.deadline = deadline
        # The settings are read at the first message (a failure to read them is that
        # message's failure, and holds the outbox); the backend is built with them.
        self.mail: MailSettings | None = None
        self._backend: EmailBackend | None = None
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leases: dict[str, int] = {}
        # Send slots reserved ahead for the claimed messages, per mailbox.
        self.slots: dict[str, deque[datetime]] = {}
        self.report: Counter[str] = Counter()
        self.out_of_time = False
        # The drain stopped early for others: interactive work waited for this process, or
        # the worker is shutting down. A new task carries on where it stopped.
        self.handed_over = False
        # The messages claimed and not yet done (the one being sent first), whose claims the
        # renewer keeps alive; the lock because the renewer reads them from its thread.
        self.batch: deque[Delivery] = deque()
        self._lock = threading.Lock()
        # A postponed message's time: the drain's continuation is not due before it.
        self.resume_at: datetime | None = None
        self._helper_asked = False
        self._look_again_at = 0.0
        self.links = priority.LinksQueued()
        self.fallback = fallback.Fallback(self.holder)
        self.marks = sent_marks.SentMarks()
        self.ahead = written_ahead.WrittenAhead()

    @property
    def backend(self) -> EmailBackend:
        """The engine's backend with the saved settings, built at the first message. What
        stops the settings loading is a ``CredentialFailure`` of that message."""
        if self._backend is None:
            self.mail = saved_mail_settings()
            self._backend = EmailBackend(fail_silently=False, mail_settings=self.mail)
        return self._backend

    def claimed(self) -> list[int]:
        with self._lock:
            return [delivery.pk for delivery in self.batch]

    def _next(self) -> Delivery | None:
        """The next claimed message, claiming a batch when none is left. A hold moves every
        pending message to held (and releases the batch first), so nothing follows it.
        One-time-link mail queued since the batch was claimed goes before the rest of it."""
        if self.links.outrank(self.batch):
            self._release_batch()
        if not self.batch:
            self.marks.flush()
            self.links.claiming()
            claimed = _claim_batch(settings.SMTP_OUTBOX_CLAIM_BATCH)
            with self._lock:
                self.batch.extend(claimed)
        return self.batch[0] if self.batch else None

    def _done(self) -> None:
        with self._lock:
            self.batch.popleft()

    def _release_batch(self, *, keep_first: bool = False) -> None:
        with self._lock:
            first = [self.batch.popleft()] if keep_first and self.batch else []
            rest = [delivery.pk for delivery in self.batch]
            self.batch = deque(first)
            self.ahead.forget()
        _release(rest)

    def drain(self) -> Counter[str]:
        renewer = _Renewer(self)
        renewer.start()
        try:
            while True:
                if time.monotonic() >= self.deadline:
                    self.out_of_time = True
                    break
                # Before every message, the first included: a pool still starts a task it had
                # reserved while the worker shuts down, and that task must not take a message
                # (the rest of a batch goes back to the queue).
                if enqueue.worker_stopping():
                    self.handed_over = True
                    break
                delivery = self._next()
                if delivery is None:
                    break
                outcome = self._deliver(delivery)
                self._done()
                self.report[outcome] += 1
                if outcome == "postponed":
                    break
                if self._others_waiting():
                    self.handed_over = True
                    break
                self._ask_for_a_helper()
        finally:
            renewer.stop()
            self._release_batch()
            if self._backend is not None:
                self._backend.close()
            self.fallback.close()
            throttle.release_leases(list(self.leases.values()))
            self.marks.flush()
        return self.report

    def _others_waiting(self) -> bool:
        """Whether interactive work waits for this process; and whether one-time-link mail
        was queued since the batch was claimed. Looked up at most every few milliseconds:
        on Redis each look is a round trip, a tenth of a message's time at full speed."""
        now = time.monotonic()
        if now < self._look_again_at:
            return False
        self._look_again_at = now + _LOOK_EVERY_SECONDS
        waiting, marks = enqueue.interactive_waiting_and(priority.MARK_KEY)
        self.links.seen = marks.get(priority.MARK_KEY)
        return waiting

    def _ask_for_a_helper(self) -> None:
        if not self._helper_asked and self.leases:
            self._helper_asked = True
            _ask_for_a_helper(next(iter(self.leases)))

    def _deliver(self, delivery: Delivery) -> str:
        if self.fallback.primary_down is not None:  # this drain saw the primary fail
            return _via_fallback(self, delivery, self.fallback.primary_down)
        mailbox = ""
        try:
            message, outgoing = self.ahead.take(delivery, self.backend)
            mailbox = outgoing.mailbox if outgoing else self.backend.mailbox_for(message)
            if not self._lease(mailbox):
                return self._postpone(
                    delivery, timezone.now() + timedelta(seconds=_LEASE_WAIT_SECONDS)
                )
            # The session first: the slot then times the message itself, not the sign-in.
            self.backend.ensure_session(mailbox)
            slot = self._slot(mailbox)
            wait = (slot.at - timezone.now()).total_seconds()
            if not slot.reserved or time.monotonic() + wait > self.deadline:
                return self._postpone(delivery, slot.at)
            if wait > 0:
                time.sleep(wait)
            answer = self.backend.send_outgoing(outgoing, meanwhile=self._meanwhile)
        except DeliveryError as error:
            if error.disposition != "fail" and mailbox:
                self._drop_session(mailbox)
            if fallback.takes_over_from(error) and self.fallback.available():
                return _via_fallback(self, delivery, error)
            return _failed(self, delivery, error, mailbox)
        except Exception as exc:
            # A fault of ours, not the server's: the message is deferred with the error's type
            # only (its text could quote a credential), and the worker goes on.
            logger.error("Outbox message %s: unexpected %s", delivery.pk, type(exc).__name__)
            if mailbox:
                self._drop_session(mailbox)
            return _failed(
                self,
                delivery,
                TemporaryFailure(
                    f"The console failed on this message ({type(exc).__name__}); it will try "
                    "again. The worker's log has the time.",
                    stage="send",
                    kind="internal",
                ),
                mailbox,
            )
        _record_sent(delivery, answer, mailbox, self.marks, primary=self.mail)
        return "sent"

    def _meanwhile(self) -> None:
        """While the server has a message: the next one written, or post_office's marks."""
        with self._lock:
            upcoming = self.batch[1] if len(self.batch) > 1 else None
        if upcoming is None or not self.ahead.write(upcoming, self.backend):
            self.marks.flush()

    def _lease(self, mailbox: str) -> bool:
        # A lease held is renewed by the renewer with the claims.
        if mailbox in self.leases:
            return True
        lease = throttle.acquire_lease(mailbox, self.holder)
        if lease is None:
            return False
        self.leases[mailbox] = lease
        return True

    def _slot(self, mailbox: str) -> throttle.Slot:
        """This message's send slot: one reserved ahead, or slots for the rest of the batch
        reserved in one transaction (as many as fall within the inline wait)."""
        ahead = self.slots.setdefault(mailbox, deque())
        if not ahead:
            reserved = throttle.reserve_slots(
                mailbox, count=len(self.batch), max_wait=_MAX_INLINE_WAIT_SECONDS
            )
            if not reserved.times:
                return throttle.Slot(reserved.next_at, reserved=False)
            ahead.extend(reserved.times)
        return throttle.Slot(ahead.popleft(), reserved=True)

    def _drop_session(self, mailbox: str) -> None:
        self.backend.close_session(mailbox)
        self.slots.pop(mailbox, None)
        lease = self.leases.pop(mailbox, None)
        if lease is not None:
            throttle.release_leases([lease])

    def _postpone(self, delivery: Delivery, until: Any) -> str:
        """Back to the queue without counting an attempt: a limit, not a failure."""
        self.resume_at = until
        Delivery.objects.filter(pk=delivery.pk).update(
            state=DeliveryState.QUEUED if not delivery.attempts else DeliveryState.DEFERRED,
            next_attempt_at=until,
            claimed_until=None,
        )
        return "postponed"


@transaction.atomic
def _failed(run: _DeliveryRun, delivery: Delivery, error: DeliveryError, mailbox: str) -> str:
    """The attempt failed: deferred, held (with every pending message) or failed, and why."""
    mail = run.mail
    finding = _finding(error, mail)
    attempts = delivery.attempts + 1
    state = _disposition(error, attempts, mail)
    explained = {
        "claimed_until": None,
        "last_answer": error.answer,
        "last_error": error.message,
        "diagnosis": finding.key if finding else "",
        "cause": finding.cause if finding else "",
        "fix": finding.fix if finding else "",
        "routes": fallback.primary_failed(mail, error, finding),
    }
    columns: dict[str, Any] = {
        "state": state,
        "attempts": attempts,
        "mailbox": mailbox,
        **explained,
    }
    if state == DeliveryState.DEFERRED:
        # The server's own "try again in" (429/503 Retry-After) is kept to, else backoff.
        wait = (
            timedelta(seconds=error.retry_after)
            if error.retry_after is not None
            else _backoff(attempts)
        )
        columns["next_attempt_at"] = timezone.now() + wait
    if error.retry_after is not None and mailbox:
        # Every message to this mailbox waits as long, in every worker, not this one only.
        throttle.defer_mailbox(mailbox, error.retry_after)
    Delivery.objects.filter(pk=delivery.pk).update(**columns)
    Log.objects.create(
        email_id=delivery.pk,
        status=STATUS.failed,
        # What the attempt led to and why, in post_office's own column (its admin shows it).
        exception_type=f"{state}: {finding.key if finding else error.kind}",
        message=error.answer or error.message,
    )
    if state == DeliveryState.FAILED:
        _record_failed(delivery.pk, error, finding)
    if state == DeliveryState.HELD:
        _hold_all(run, explained, error)
    else:
        logger.info("Outbox message %s %s: %s", delivery.pk, state, error.answer or error.message)
    return str(state)


def _messages(count: int) -> str:
    return f"{count} message{'' if count == 1 else 's'}"


def _hold_all(run: _DeliveryRun, explained: dict[str, Any], error: DeliveryError) -> None:
    """Every other message would fail the same way: they wait too, without an attempt
    (the rest of this drain's batch with them)."""
    run._release_batch(keep_first=True)
    held = Delivery.objects.filter(state__in=Delivery.PENDING).update(
        state=DeliveryState.HELD, **explained
    )
    logger.warning("Outbox held (%s besides this one): %s", _messages(held), error.message)
    entry = activity_record(
        kind=Kind.OUTBOX_HELD,
        summary=f"Outbox held: {_messages(held + 1)} {'wait' if held else 'waits'} for working "
        f"settings. {error.message}",
    )
    outbox_turned.send(
        sender=Delivery, turn="held", summary=entry.summary, at=entry.at, entry_id=entry.pk
    )


# -- administrators' actions and views --------------------------------------------------


def outbox_release_held(
    *, by: AbstractBaseUser | None = None, reason: str = "the SMTP settings were saved"
) -> int:
    """Held messages go back to the queue (settings were saved); a worker is asked to deliver."""
    released = Delivery.objects.filter(state=DeliveryState.HELD).update(
        state=DeliveryState.QUEUED, next_attempt_at=timezone.now()
    )
    if released:
        logger.info("Outbox: %s released from the hold", _messages(released))
        entry = activity_record(
            kind=Kind.OUTBOX_RELEASED,
            summary=f"Released {_messages(released)} from the hold: {reason}.",
            actor=by,
        )
        outbox_turned.send(
            sender=Delivery, turn="released", summary=entry.summary, at=entry.at, entry_id=entry.pk
        )
        outbox_delivery_request()
    return released


@transaction.atomic
def outbox_retry(*, email_id: int, user: AbstractBaseUser) -> bool:
    """Try a deferred, held or failed message again now.

    Held messages all wait on the same settings: retrying one tries them all again (if
    the settings still fail, they are held again after one attempt).
    """
    if Delivery.objects.filter(pk=email_id, state=DeliveryState.HELD).exists():
        logger.info("Outbox: held messages retried by %s", user.get_username())
        return outbox_release_held(by=user, reason=f"message {email_id} was retried") > 0
    # A withdrawn alert is not retried: what it said is no longer true.
    retried = (
        Delivery.objects.filter(
            pk=email_id, state__in=[DeliveryState.DEFERRED, DeliveryState.FAILED]
        )
        .exclude(diagnosis=WITHDRAWN)
        .update(state=DeliveryState.QUEUED, next_attempt_at=timezone.now())
    )
    if retried:
        Email.objects.filter(pk=email_id).update(status=STATUS.requeued)
        logger.info("Outbox message %s retried by %s", email_id, user.get_username())
        activity_record(
            kind=Kind.OUTBOX_RETRIED, summary=f"Retried outbox message {email_id}.", actor=user
        )
        outbox_delivery_request()
    return bool(retried)


@transaction.atomic
def outbox_discard(*, email_id: int, user: AbstractBaseUser) -> bool:
    """Give up on a message that has not gone: it stays listed as failed, by whom."""
    discarded = Delivery.objects.filter(
        pk=email_id, state__in=[*Delivery.PENDING, DeliveryState.HELD]
    ).update(
        state=DeliveryState.FAILED,
        last_error=f"Discarded by {user.get_username()} at {timezone.now():%Y-%m-%d %H:%M} UTC.",
        last_answer="",
        diagnosis="",
        cause="",
        fix="",
    )
    if discarded:
        Email.objects.filter(pk=email_id).update(status=STATUS.failed)
        logger.info("Outbox message %s discarded by %s", email_id, user.get_username())
        activity_record(
            kind=Kind.OUTBOX_DISCARDED,
            summary=f"Discarded outbox message {email_id}: it will not be sent.",
            actor=user,
        )
    return bool(discarded)


def _record_failed(email_id: int, error: DeliveryError, finding: Any) -> None:
    """A message that will not be tried again: post_office's row says so, and the activity
    trail (where alerts outside mail hear of it)."""
    Email.objects.filter(pk=email_id).update(status=STATUS.failed)
    email = Email.objects.filter(pk=email_id).values("to", "subject").first() or {}
    to = ", ".join(email.get("to") or []) or "?"
    why = f" {finding.cause}" if finding and finding.cause else ""
    said = error.answer or error.message
    entry = activity_record(
        kind=Kind.OUTBOX_FAILED, summary=f"Message {email_id} to {to} failed for good: {said}.{why}"
    )
    outbox_turned.send(
        sender=Delivery,
        turn="failed",
        email_id=email_id,
        summary=entry.summary,
        at=entry.at,
        entry_id=entry.pk,
    )


def outbox_withdraw(*, subject: str, reason: str) -> int:
    """Messages with this subject that have not gone are no longer to go (an alert made
    untrue): failed, with the reason, never sent, and never retried. One being sent
    (claimed) is left alone."""
    waiting = Delivery.objects.filter(
        email__subject=subject, state__in=[*Delivery.PENDING, DeliveryState.HELD]
    )
    ids = list(waiting.values_list("pk", flat=True))
    withdrawn = waiting.filter(pk__in=ids).update(
        state=DeliveryState.FAILED, last_error=reason, last_answer="", diagnosis=WITHDRAWN,
        cause="", fix="",
    )  # fmt: skip
    if withdrawn:
        failed = Delivery.objects.filter(pk__in=ids, state=DeliveryState.FAILED, last_error=reason)
        Email.objects.filter(pk__in=failed.values("pk")).update(status=STATUS.failed)
        logger.info("Outbox: %s withdrawn: %s", _messages(withdrawn), reason)
    return withdrawn


def outbox_postpone(*, subject: str, seconds: float) -> int:
    """Messages with this subject waiting in the queue go no sooner than ``seconds`` from now
    (an alert that a check on its way may make untrue). Returns how many."""
    return Delivery.objects.filter(email__subject=subject, state__in=Delivery.PENDING).update(
        next_attempt_at=timezone.now() + timedelta(seconds=seconds)
    )


def outbox_page(
    *, state: str = "", before: int | None = None, size: int = 50
) -> tuple[list[Email], int | None]:
    """A page of messages, newest first, older than ``before``; and where the next page
    starts, if there is one. Pages by id rather than by number: no count of the whole
    history on every visit."""
    emails = Email.objects.select_related("delivery").order_by("-pk")
    if state in DeliveryState.values:
        emails = emails.filter(delivery__state=state)
    if before is not None:
        emails = emails.filter(pk__lt=before)
    found = list(
        emails.only(
            "to",
            "cc",
            "bcc",
            "subject",
            "from_email",
            "created",
            "delivery__state",
            "delivery__attempts",
            "delivery__last_answer",
            "delivery__last_error",
            "delivery__diagnosis",
            "delivery__cause",
            "delivery__next_attempt_at",
            "delivery__updated_at",
            "delivery__connection",
            "delivery__routes",
        )[: size + 1]
    )
    return found[:size], (found[size - 1].pk if len(found) > size else None)


# The sent count covers a day: counting every message ever sent would make each page
# that shows it slower as the history grows.
SENT_COUNT_WINDOW = timedelta(hours=24)


def outbox_counts() -> dict[str, int]:
    """Messages per state, sent ones of the last ``SENT_COUNT_WINDOW`` only: one query that
    reads only unsent rows and the day's sent ones (both indexed)."""
    counts = dict.fromkeys(DeliveryState.values, 0)
    unsent = [state for state in DeliveryState.values if state != DeliveryState.SENT]
    since = timezone.now() - SENT_COUNT_WINDOW
    rows = (
        Delivery.objects.filter(
            Q(state__in=unsent) | Q(state=DeliveryState.SENT, sent_at__gte=since)
        )
        .values("state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        counts[row["state"]] = row["n"]
    return counts


def outbox_last_sent() -> datetime | None:
    return Delivery.objects.filter(state=DeliveryState.SENT).aggregate(at=Max("sent_at"))["at"]


def outbox_held(*, count: int) -> dict[str, Any] | None:
    """The held messages' count (known to the caller from the counts) and the latest hold's
    explanation; no query at all while nothing is held."""
    if count == 0:
        return None
    latest = (
        Delivery.objects.filter(state=DeliveryState.HELD)
        .order_by("-updated_at")
        .values("last_error", "diagnosis", "cause", "fix", "routes", "updated_at")
        .first()
    )
    return {"count": count, **latest} if latest else None


def outbox_purge() -> int:
    """Sent messages (and their logs) older than ``SMTP_OUTBOX_RETENTION_DAYS`` go."""
    cutoff = timezone.now() - timedelta(days=settings.SMTP_OUTBOX_RETENTION_DAYS)
    old = Email.objects.filter(delivery__state=DeliveryState.SENT, delivery__sent_at__lt=cutoff)
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:1000]):
        deleted += Email.objects.filter(pk__in=ids).delete()[1].get("post_office.Email", 0)
    for attachment in Attachment.objects.filter(emails=None):
        attachment.file.delete(save=False)
        attachment.delete()
    return deleted
