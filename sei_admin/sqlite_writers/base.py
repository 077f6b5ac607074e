"""Django's SQLite backend, with a transaction that waits for the write lock by trying
again soon, then less and less often, instead of in SQLite's own steps.

Every transaction here takes the write lock at BEGIN (``transaction_mode`` IMMEDIATE, in
settings). A process that finds it taken waits in SQLite's busy handler, which sleeps 1, 2,
5, 10... ms between tries: two outbox workers, each holding the lock for a tenth of a
millisecond per message, lost a millisecond at a time to each other (an eighth of a
worker's time in the drain). Here the first try again comes after 0.1 ms and each pause
doubles up to 2 ms: a short wait ends at once, a long one costs a try every 2 ms (every
0.1 ms took a quarter of a core while waiting). Statements outside a transaction keep
SQLite's handler, and the wait keeps its bound: the ``timeout`` option, as before.
"""

from __future__ import annotations

import sqlite3
import time

from django.db import OperationalError
from django.db.backends.sqlite3 import base

_FIRST_PAUSE_SECONDS = 0.0001
_LONGEST_PAUSE_SECONDS = 0.002


class DatabaseWrapper(base.DatabaseWrapper):
    def _start_transaction_under_autocommit(self) -> None:
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        deadline = time.monotonic() + timeout
        pause = _FIRST_PAUSE_SECONDS
        self.connection.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    super()._start_transaction_under_autocommit()
                    return
                except OperationalError as exc:
                    code = getattr(exc.__cause__, "sqlite_errorcode", 0)
                    busy = code & 0xFF == sqlite3.SQLITE_BUSY
                    if not busy or time.monotonic() >= deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE_SECONDS)
        finally:
            self.connection.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
