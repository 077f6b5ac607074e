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

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from post_office.models import STATUS, Email, Log

from smtp_settings.models import Delivery, DeliveryState
from smtp_settings.outbox import writes

# A live drain writes its marks at least this often (and at the end of each batch).
_FLUSH_EVERY_SECONDS = 1.0


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
        pending, self.pending = self.pending, []
        _write(pending)


def sent_marks_catch_up() -> int:
    """Marks left unwritten by a drain that stopped before writing them (a killed worker):
    sent messages whose post_office status is still not "sent", sent longer ago than a live
    drain keeps its marks. Few rows are ever unmarked, and the status column is indexed."""
    before = timezone.now() - timedelta(seconds=max(_FLUSH_EVERY_SECONDS * 5, 1.0))
    rows = (
        Delivery.objects.filter(
            state=DeliveryState.SENT,
            sent_at__lt=before,
            email__status__in=[STATUS.queued, STATUS.requeued],
        )
        .values_list("pk", "last_answer", "sent_at")
        .order_by("pk")[: settings.SMTP_OUTBOX_CLAIM_BATCH * 50]
    )
    return _write([SentMark(pk, answer, sent_at) for pk, answer, sent_at in rows])
