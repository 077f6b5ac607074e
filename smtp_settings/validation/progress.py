"""Word of a run's progress from the worker to the web, through the shared cache.

The worker bumps a run's mark after each write; a status request that already saw the
current mark waits for the next one instead of the browser polling on a timer. The mark
is only a hint to read again: the rows stay the truth, and a lost mark costs at most
one wait.
"""

from __future__ import annotations

import threading
import time
import uuid

from django.conf import settings
from django.core.cache import cache

# Long enough for any run; a mark outliving its run does no harm.
_KEEP_SECONDS = 3600
# How often a waiting request looks at the mark: two milliseconds of delay at most,
# one cache read (a file stat and read, or a Redis GET on loopback) each time, while a
# run's steps come quickly; after that a run is stuck on a slow step, and a tenth of a
# second of delay costs nothing.
_LOOK_EVERY_SECONDS = 0.002
_QUICK_FOR_SECONDS = 2.0
_LOOK_LATER_EVERY_SECONDS = 0.1

# A waiting request holds a web thread: only so many wait at once in one process, so that
# open run pages never take every thread (SEI_LONG_POLLS_PER_PROCESS).
_waiting = 0
_waiting_lock = threading.Lock()


def _key(run_id: uuid.UUID | str) -> str:
    return f"validation-progress:{run_id}"


# A finished run's mark starts with this: nothing more will come, so nobody waits on it.
_FINAL = "final-"


def touch(run_id: uuid.UUID | str, *, final: bool = False) -> None:
    """Something of this run changed in the database."""
    cache.set(_key(run_id), (_FINAL if final else "") + uuid.uuid4().hex[:12], _KEEP_SECONDS)


def mark(run_id: uuid.UUID | str) -> str:
    return cache.get(_key(run_id)) or ""


def wait(run_id: uuid.UUID | str, *, seen: str, timeout: float) -> str:
    """Return as soon as the run's mark differs from ``seen``, or after ``timeout``; at
    once when the run has ended or when too many requests of this process wait already
    (the page then asks again a moment later)."""
    global _waiting
    if seen.startswith(_FINAL):
        return seen
    with _waiting_lock:
        if _waiting >= settings.SEI_LONG_POLLS_PER_PROCESS:
            return mark(run_id)
        _waiting += 1
    try:
        started = time.monotonic()
        while (current := mark(run_id)) == seen:
            waited = time.monotonic() - started
            if waited >= timeout:
                break
            time.sleep(
                _LOOK_EVERY_SECONDS if waited < _QUICK_FOR_SECONDS else _LOOK_LATER_EVERY_SECONDS
            )
        return current
    finally:
        with _waiting_lock:
            _waiting -= 1
