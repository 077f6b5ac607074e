"""A run's step rows written by a thread of their own while the next step is on the wire.

Against a fast server a step takes a millisecond or two, as long as its row's UPDATE and the
waiting pages' mark: written in line, the writes were a third of a run (23-33 ms in all
against the sandbox). Here the run hands each write over and goes on; the writer gathers
what ends within 10 ms, writes it and marks once. The run waits for the writer before its
verdict (``close``), so the verdict is never seen before its steps.

Inside a caller's transaction (a test, a shell) a write is made at once in that transaction:
another thread's connection would not see the run's rows, and would wait for their lock.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from django.db import connection, transaction

from smtp_settings.models import ValidationStep
from smtp_settings.validation import progress

logger = logging.getLogger(__name__)

# The keys of the run's steps to write, and their columns.
_Write = tuple[list[str], dict[str, Any]]
# Steps that end within this of one another are written together, with one mark: against a
# fast server a run is over before the first group, and the page sees it all with the
# verdict; a step that hangs finds the steps before it shown.
_GATHER_SECONDS = 0.01


class StepWriter:
    def __init__(self, run_id: Any) -> None:
        self.run_id = run_id
        self._writes: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, keys: list[str], columns: dict[str, Any]) -> None:
        if connection.in_atomic_block:
            write_rows(self.run_id, [(keys, columns)])
            progress.touch(self.run_id)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="step-writer", daemon=True)
            self._thread.start()
        self._writes.put((keys, columns))

    def close(self) -> None:
        """Waits for every write handed over; a write that failed fails here, in the run."""
        if self._thread is not None:
            self._writes.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        try:
            while self._write_a_group():
                pass
        except BaseException as error:  # handed to the run at close()
            self._error = error
            logger.warning("Validation run %s: a step's row was not written", self.run_id)
            while self._writes.get() is not None:  # what is left is dropped with it
                pass
        finally:
            # The thread's own database connection, which nothing else would close.
            connection.close()

    def _write_a_group(self) -> bool:
        """Writes what is handed over within ``_GATHER_SECONDS`` of the first, then marks
        once; returns False once the run has closed (its verdict marks the last group)."""
        group: list[_Write] = []
        write = self._writes.get()
        gathered_until = time.monotonic() + _GATHER_SECONDS
        while write is not None:
            group.append(write)
            try:
                write = self._writes.get(timeout=max(gathered_until - time.monotonic(), 0))
            except queue.Empty:
                break
        if group:
            write_rows(self.run_id, group)
        if write is None:
            return False
        progress.touch(self.run_id)
        return True


def write_rows(run_id: Any, writes: list[_Write]) -> None:
    """The writes in one transaction, one UPDATE statement for each run of writes with the
    same columns (executemany): one commit, and the ORM's work once per statement."""
    meta = ValidationStep._meta
    quote = connection.ops.quote_name
    run = meta.get_field("run").get_db_prep_save(run_id, connection)
    # No savepoint inside a caller's transaction: these writes stand or fall with it.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        for names, rows in _same_columns(writes):
            fields = [meta.get_field(name) for name in names]
            sets = ", ".join(f"{quote(field.column)} = %s" for field in fields)
            cursor.executemany(
                f"UPDATE {quote(meta.db_table)} SET {sets} "  # noqa: S608 - our own names
                f"WHERE {quote(meta.get_field('run').column)} = %s AND {quote('key')} = %s",
                [
                    [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)]
                    + [run, key]
                    for key, values in rows
                ],
            )


def _same_columns(writes: list[_Write]) -> list[tuple[tuple[str, ...], list[tuple[str, list]]]]:
    """Consecutive writes of the same columns together, in order: (names, [(key, values)])."""
    statements: list[tuple[tuple[str, ...], list[tuple[str, list]]]] = []
    for keys, columns in writes:
        names = tuple(columns)
        if not statements or statements[-1][0] != names:
            statements.append((names, []))
        statements[-1][1].extend((key, list(columns.values())) for key in keys)
    return statements
