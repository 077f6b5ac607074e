"""One thread that acts when a deadline passes, for every deadline of the process.

The mail engine bounds each SMTP stage and each HTTPS exchange with a whole-step deadline.
A ``threading.Timer`` per deadline started and stopped a thread for every stage of every
message (about a third of a millisecond a message, measured in ``make bench``); here a
deadline is an entry in a heap that one daemon thread watches.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable

# Cancelled entries are dropped when they reach the head of the heap, or all at once when
# they are this many and most of it (a short deadline seldom waits behind a long one).
_COMPACT_AT = 1024


class Deadline:
    """What ``after`` returns: ``cancel()`` when the step is over in time."""

    __slots__ = ("action", "cancelled")

    def __init__(self, action: Callable[[], object]) -> None:
        self.action = action
        self.cancelled = False

    def cancel(self) -> None:
        _watchdog.cancel(self)


class _Watchdog:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._cancelled = 0
        self._condition = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, action: Callable[[], object]) -> Deadline:
        deadline = Deadline(action)
        due = time.monotonic() + seconds
        with self._condition:
            sooner = not self._heap or due < self._heap[0][0]
            heapq.heappush(self._heap, (due, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="deadline-watchdog", daemon=True
                )
                self._thread.start()
            elif sooner:
                self._condition.notify()
        return deadline

    def cancel(self, deadline: Deadline) -> None:
        with self._condition:
            if deadline.cancelled:
                return
            deadline.cancelled = True
            self._cancelled += 1
            if self._cancelled > _COMPACT_AT and self._cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _next_due(self) -> Deadline:
        """Waits for the first deadline that passes uncancelled, and takes it off the heap."""
        with self._condition:
            while True:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                    self._cancelled -= 1
                if not self._heap:
                    self._condition.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    deadline = heapq.heappop(self._heap)[2]
                    # Fired: a late cancel() has nothing left to stop.
                    deadline.cancelled = True
                    return deadline
                self._condition.wait(wait)

    def _watch(self) -> None:
        while True:
            deadline = self._next_due()
            try:
                deadline.action()
            except Exception:  # noqa: S112 - one action's fault must not stop the others
                continue


_watchdog = _Watchdog()
# A forked child has no watchdog thread, and the lock may have been held at the fork.
os.register_at_fork(after_in_child=_watchdog._reset)


def after(seconds: float, action: Callable[[], object]) -> Deadline:
    """Run ``action`` (briefly: it must not block) in ``seconds`` unless cancelled first."""
    return _watchdog.after(seconds, action)
