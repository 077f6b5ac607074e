"""The Celery worker processes a soak run kills and starts again, and beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Processes:
    """``workers`` solo-pool workers (one process each, so a SIGKILL kills the process that
    sends) and one beat, all with ``env``; their output goes to ``logs``."""

    def __init__(self, *, env: dict[str, str], queues: str, logs: Path) -> None:
        self.env = env
        self.queues = queues
        self.logs = logs
        self.workers: list[subprocess.Popen[bytes]] = []
        self.beat: subprocess.Popen[bytes] | None = None
        self.started = 0
        logs.mkdir(parents=True, exist_ok=True)

    def _spawn(self, name: str, *arguments: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(  # noqa: S603  (our own programs, fixed arguments)
            [sys.executable, "-m", "celery", "-A", "sei_admin", *arguments],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def start_worker(self, slot: int | None = None) -> subprocess.Popen[bytes]:
        self.started += 1
        name = f"soak{self.started}"
        process = self._spawn(
            name, "worker", "--pool=solo", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel=WARNING", "-n", f"{name}@%h", "-Q", self.queues,
        )  # fmt: skip
        if slot is None:
            self.workers.append(process)
        else:
            self.workers[slot] = process
        return process

    def start_beat(self) -> None:
        self.beat = self._spawn("beat", "beat", "--loglevel=WARNING")

    def kill(self, slot: int) -> int:
        """SIGKILL the worker in ``slot`` and wait for it to be gone (``start_worker(slot)``
        starts another there)."""
        victim = self.workers[slot]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        return victim.pid

    def stop(self) -> None:
        running = [p for p in [*self.workers, self.beat] if p is not None and p.poll() is None]
        for process in running:
            os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
