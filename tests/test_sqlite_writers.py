"""The embedded database's writers: a transaction waits for another process's write lock
by trying again, within the configured timeout, and statements outside a transaction keep
SQLite's own wait. Run on a SQLite file of their own, whatever database the suite uses."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

TIMEOUT_SECONDS = 0.5


def writer(path: Path) -> Any:
    """A connection as settings make it for the embedded database (IMMEDIATE transactions)."""
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "sei_admin.sqlite_writers",
                "NAME": str(path),
                "OPTIONS": {"timeout": TIMEOUT_SECONDS, "transaction_mode": "IMMEDIATE"},
            }
        }
    )
    connection = handler["default"]
    connection.ensure_connection()
    return connection


def begin(connection: Any) -> None:
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def end(connection: Any) -> None:
    connection.commit()
    connection.set_autocommit(True)


@pytest.fixture(autouse=True)
def _own_database_allowed(django_db_blocker: Any) -> Any:
    # Not the suite's test database: a file of this test's own.
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "writers.sqlite3"
    first = writer(path)
    first.connection.execute("PRAGMA journal_mode=WAL")
    first.connection.execute("CREATE TABLE note (text TEXT)")
    first.close()
    return path


def test_a_transaction_waits_for_the_lock_and_then_writes(database: Path) -> None:
    locked, waiting = threading.Event(), threading.Event()
    holder_error: list[BaseException] = []

    def hold() -> None:
        connection = writer(database)
        try:
            begin(connection)
            connection.connection.execute("INSERT INTO note VALUES ('first')")
            locked.set()
            waiting.wait(5)
            end(connection)
        except BaseException as exc:  # seen by the test, not lost in the thread
            holder_error.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(5)
    second = writer(database)
    tries: list[float] = []
    second.connection.set_trace_callback(
        lambda sql: tries.append(time.monotonic()) if sql == "BEGIN IMMEDIATE" else None
    )
    threading.Timer(0.05, waiting.set).start()  # the first commits while the second waits
    begin(second)
    # Tried again and again, not left to SQLite's handler (which sleeps 1, 2, 5... ms), and
    # soon less often: after five tries at least 2 ms apart (a long wait costs little CPU).
    assert len(tries) > 6
    assert min(later - earlier for earlier, later in itertools.pairwise(tries[5:])) >= 0.0019
    second.connection.execute("INSERT INTO note VALUES ('second')")
    end(second)
    thread.join(5)
    assert not holder_error
    rows = second.connection.execute("SELECT text FROM note").fetchall()
    assert rows == [("first",), ("second",)]
    # Outside a transaction, SQLite's own wait holds again, with the configured bound.
    assert second.connection.execute("PRAGMA busy_timeout").fetchone() == (500,)
    second.close()


def test_a_lock_held_past_the_timeout_ends_the_wait_with_an_error(database: Path) -> None:
    holder = writer(database)
    begin(holder)
    holder.connection.execute("INSERT INTO note VALUES ('held')")
    waiter = writer(database)
    with pytest.raises(OperationalError, match="locked"):
        begin(waiter)
    assert waiter.connection.execute("PRAGMA busy_timeout").fetchone() == (500,)
    end(holder)
    begin(waiter)  # free again: the same connection takes it
    end(waiter)
    holder.close()
    waiter.close()
