"""Wakes the embedded broker's consumers at once when a message is put, instead of their
next look at the folder.

Each consuming process has a named pipe of its own (``<pid>.bell``) in a folder beside the
queue; whoever puts a message writes a byte to every pipe there. A consumer waits on its pipe
with a timeout of the polling interval, so a bell that is not heard (a pipe full, a consumer
that started a moment after the put) costs what polling cost before: nothing is lost, as
the files stay the queue. One pipe per process rather than one shared by all: a byte read
by a busy worker would otherwise leave an idle one asleep.

POSIX only (named pipes); elsewhere nobody rings and consumers poll as before.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import threading

_SUFFIX = ".bell"
_lock = threading.Lock()
# (pid, folder) → this process's pipe: a forked child makes its own.
_bells: dict[tuple[int, str], Bell] = {}


def ring(folder: str) -> None:
    """Tells every consumer of this folder's queue that a message is there; never fails."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.endswith(_SUFFIX):
            continue
        with contextlib.suppress(OSError):
            # ENXIO: nobody listens on it (a consumer gone); EAGAIN: already rung.
            descriptor = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.write(descriptor, b"\0")
            finally:
                os.close(descriptor)


class Bell:
    def __init__(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        _forget_the_dead(folder)
        self.path = os.path.join(folder, f"{os.getpid()}{_SUFFIX}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.mkfifo(self.path, 0o600)
        # Read and write: the pipe always has a writer (this process), so waiting on it
        # never returns at once for a writer that came and went.
        self.descriptor = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        atexit.register(self.close)

    def wait(self, seconds: float) -> None:
        """Returns when rung (what was rung is read away) or after ``seconds``."""
        ready, _, _ = select.select([self.descriptor], [], [], seconds)
        if ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self.descriptor, 4096):
                    pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self.descriptor)


def bell_for(folder: str) -> Bell | None:
    """This process's bell for that folder, made at its first wait; None where there are
    no named pipes."""
    if not hasattr(os, "mkfifo"):
        return None
    key = (os.getpid(), folder)
    with _lock:
        if key not in _bells:
            try:
                _bells[key] = Bell(folder)
            except OSError:
                return None
        return _bells[key]


def _forget_the_dead(folder: str) -> None:
    """Pipes left by consumers killed without their atexit (SIGKILL): rung for nothing."""
    for name in os.listdir(folder):
        pid = name.removesuffix(_SUFFIX)
        if not name.endswith(_SUFFIX) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
        except OSError:  # alive, someone else's (EPERM)
            pass
