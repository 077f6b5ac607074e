"""Word of a run's progress from the worker to the web, through the shared cache.

The worker bumps a run's mark after each write; a status request that already saw the
current mark waits for the next one instead of the browser polling on a timer. The mark
is only a hint to read again: the rows stay the truth, and a lost mark costs at most
one wait.
"""

from __future__ import annotations

import time
import uuid

from django.core.cache import cache

# Long enough for any run; a mark outliving its run does no harm.
_KEEP_SECONDS = 3600
# How often a waiting request looks at the mark: a few milliseconds of delay at most,
# one cache read (a file stat and read, or a Redis GET on loopback) each time.
_LOOK_EVERY_SECONDS = 0.005


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
    """Return as soon as the run's mark differs from ``seen``, or after ``timeout``."""
    if seen.startswith(_FINAL):
        return seen
    deadline = time.monotonic() + timeout
    while (current := mark(run_id)) == seen and time.monotonic() < deadline:
        time.sleep(_LOOK_EVERY_SECONDS)
    return current
