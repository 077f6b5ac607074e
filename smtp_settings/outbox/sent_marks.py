"""post_office's own record of a sent message, its ``Email.status`` and a ``Log`` row,
written for several messages at once.

The outbox's state is ``Delivery.state``, written for each message before the next goes:
that is what a killed worker must not lose. post_office's status column and its Log row say
the same again; written in the same transaction, they were two of every message's three
statements and held the database's one writer lock (SQLite) for as long again. Nothing
decides anything on them (the pages read ``Delivery``, and post_office's ``send_queued_mail``
refuses to run), so a drain writes them for its messages together: when a claimed batch is
done, when a second has passed, and when it ends. A worker killed in between leaves them
unwritten; the next drain writes them from the ``Delivery`` rows (``sent_marks_catch_up``),
with the same answer and time. Each message's marks are written once whoever gets there
first: only rows whose status is not yet "sent" are changed, and only those get a Log row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from post_office.models import STATUS, Email, Log

from smtp_settings.models import Delivery, DeliveryState
from smtp_settings.outbox import writes

logger = logging.getLogger(__name__)

# A live drain writes its marks at least this often (and at the end of each batch).
_FLUSH_EVERY_SECONDS = 1.0
# A drain looks for marks a killed worker left at most this often (per process).
_CATCH_UP_EVERY_SECONDS = 30.0
_caught_up_at = -_CATCH_UP_EVERY_SECONDS


@dataclass(frozen=True)
class SentMark:
    pk: int
    answer: str
    sent_at: datetime


def _write(marks: list[SentMark]) -> int:
    """Marks the messages sent in post_office's tables, those not marked yet; how many."""
    if not marks:
        return 0
    by_pk = {mark.pk: mark for mark in marks}
    quote = connection.ops.quote_name
    table, key, status = (
        quote(Email._meta.db_table),
        quote(Email._meta.pk.column),
        quote(Email._meta.get_field("status").column),
    )
    marks_sql = ", ".join(["%s"] * len(by_pk))
    with transaction.atomic(), connection.cursor() as cursor:
        # Names from the model, values only as parameters.
        cursor.execute(
            f"UPDATE {table} SET {status} = %s WHERE {key} IN ({marks_sql}) "  # noqa: S608
            f"AND ({status} IS NULL OR {status} <> %s) RETURNING {key}",
            [STATUS.sent, *by_pk, STATUS.sent],
        )
        changed = [row[0] for row in cursor.fetchall()]
        for pk in changed:
            mark = by_pk[pk]
            answer = mark.answer or "sent"
            sql, params = writes.insert_row(
                Log, email_id=pk, status=STATUS.sent, message=answer, date=mark.sent_at
            )
            cursor.execute(sql, params)
    return len(changed)


class SentMarks:
    """A drain's messages sent and not yet marked in post_office's tables."""

    def __init__(self) -> None:
        self.pending: list[SentMark] = []
        self._since = 0.0

    def add(self, pk: int, answer: str, sent_at: datetime) -> None:
        if not self.pending:
            self._since = time.monotonic()
        self.pending.append(SentMark(pk, answer, sent_at))
        if time.monotonic() - self._since >= _FLUSH_EVERY_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Writes the pending marks. Never raises: the messages are sent whatever happens
        here, and marks not written now are written by a later drain."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        try:
            _write(pending)
        except DatabaseError as exc:
            logger.warning("Outbox: post_office's marks not written now (%s)", type(exc).__name__)


def sent_marks_catch_up_now_and_then() -> None:
    """``sent_marks_catch_up``, at most every ``_CATCH_UP_EVERY_SECONDS`` in this process:
    every drain starts with it, and drains start many times a minute."""
    global _caught_up_at
    if time.monotonic() - _caught_up_at >= _CATCH_UP_EVERY_SECONDS:
        _caught_up_at = time.monotonic()
        try:
            sent_marks_catch_up()
        except DatabaseError as exc:  # the drain goes on; a later one looks again
            logger.warning("Outbox: post_office's marks not caught up (%s)", type(exc).__name__)


def sent_marks_catch_up() -> int:
    """Marks left unwritten by a drain that stopped before writing them (a killed worker):
    sent messages whose post_office status is still "queued", sent longer ago than a live
    drain keeps its marks."""
    before = timezone.now() - timedelta(seconds=_FLUSH_EVERY_SECONDS * 5)
    rows = Delivery.objects.filter(pk__in=_unmarked(before)).values_list(
        "pk", "last_answer", "sent_at"
    )
    return _write([SentMark(pk, answer, sent_at) for pk, answer, sent_at in rows])


def _unmarked(before: datetime) -> list[int]:
    """Keys of messages sent before ``before`` whose status still says queued. Read from the
    queued messages (the status column's index: the pending ones, few), not from the sent
    ones (every message of the retention period): SQLite's planner took the sent rows'
    index, and CROSS JOIN keeps it to the order written (PostgreSQL plans it as any join)."""
    email, delivery = Email._meta, Delivery._meta
    quote = connection.ops.quote_name
    sql = (
        f"SELECT d.{quote(delivery.pk.column)} FROM {quote(email.db_table)} e "  # noqa: S608
        f"CROSS JOIN {quote(delivery.db_table)} d "
        f"WHERE d.{quote(delivery.pk.column)} = e.{quote(email.pk.column)} "
        f"AND e.{quote(email.get_field('status').column)} IN (%s, %s) "
        f"AND d.{quote(delivery.get_field('state').column)} = %s "
        f"AND d.{quote(delivery.get_field('sent_at').column)} < %s LIMIT %s"
    )
    params = [
        STATUS.queued,
        STATUS.requeued,
        DeliveryState.SENT,
        connection.ops.adapt_datetimefield_value(before),
        settings.SMTP_OUTBOX_CLAIM_BATCH * 50,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]
