"""Memory: what `make run` holds once started and what the Docker services hold, in MB.

`make run` is measured as it runs: honcho starting the Procfile on the embedded defaults
(SQLite, the file-system broker) in a folder of its own. Docker's services are the same
programs with compose's arguments (gunicorn.conf.py's processes, the worker's threads, a beat
process), started side by side without Docker. Each figure is the sum over every process of
the tree of its resident set (RSS, what `ps` shows; shared pages count in each process) and
of its proportional set (PSS, shared pages divided among their users), read from
/proc/PID/smaps_rollup once the worker is ready and web has answered a request.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.validate import BIN, ROOT, _free_port

_SAMPLES = 3
_READY_SECONDS = 90


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _kilobytes(rollup: str, field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+)", rollup, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _megabytes(roots: list[int]) -> tuple[float, float, int]:
    """(RSS, PSS, processes) summed over the trees under ``roots``."""
    rss = pss = count = 0
    for pid in (pid for root in roots for pid in _tree(root)):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:  # ended meanwhile
            continue
        count += 1
        rss += _kilobytes(rollup, "Rss")
        pss += _kilobytes(rollup, "Pss")
    return rss / 1024, pss / 1024, count


class _Stack:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sei-bench-stack-"))
        self.port = _free_port()
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "SEI_CACHE_URL", "WEB_CONCURRENCY"}
        }
        self.env.update(
            {
                "SEI_VAR_DIR": str(self.folder),
                "DJANGO_DEBUG": "true",
                "SEI_CONSOLE_URL": f"http://127.0.0.1:{self.port}",
                "PORT": str(self.port),
                "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            }
        )
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log = self.folder / "stack.log"

    def migrate(self) -> None:
        subprocess.run(  # noqa: S603 - our own program, fixed arguments
            [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )

    def start(self, *command: str) -> None:
        with self.log.open("ab") as log:
            self.processes.append(
                subprocess.Popen(  # noqa: S603 - our own programs, fixed arguments
                    command,
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_SECONDS
        while time.monotonic() < deadline:
            ready = " ready." in self.log.read_text(errors="replace")
            try:
                answered = (
                    requests.get(
                        f"http://127.0.0.1:{self.port}/healthz/live", timeout=5
                    ).status_code
                    == 200
                )
            except requests.ConnectionError:
                answered = False
            if ready and answered:
                return
            time.sleep(0.5)
        raise SystemExit(f"Memory: the stack did not start within {_READY_SECONDS} s: {self.log}")

    def measure(self) -> list[tuple[float, float, int]]:
        samples = []
        for _ in range(_SAMPLES):
            time.sleep(2)
            samples.append(_megabytes([process.pid for process in self.processes]))
        return samples

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _make_run() -> list[tuple[float, float, int]]:
    stack = _Stack()
    try:
        stack.migrate()
        stack.start(
            str(BIN / "honcho"), "--procfile", "Procfile", "start", "--port", stack.env["PORT"]
        )
        stack.wait_ready()
        return stack.measure()
    finally:
        stack.stop()


def _compose_services() -> list[tuple[float, float, int]]:
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    stack = _Stack()
    try:
        stack.migrate()
        for name in ("web", "worker", "beat"):
            command = [str(part) for part in services[name]["command"]]
            if name == "web":  # compose listens on every address; here loopback only
                command = [*command[:-2], "--bind", f"127.0.0.1:{stack.port}"]
            if name == "beat":
                command = [
                    part if part != "/app/var/celerybeat-schedule" else str(stack.folder / "beat")
                    for part in command
                ]
            stack.start(str(BIN / command[0]), *command[1:])
        stack.wait_ready()
        return stack.measure()
    finally:
        stack.stop()


def measure() -> list[dict[str, Any]]:
    rows = []
    for name, goal, samples in (
        ("Memory, make run", "< 350", _make_run()),
        ("Memory, Docker's services", "(for reference)", _compose_services()),
    ):
        rows.append(
            {
                "name": name,
                "measure": "MB resident (RSS) summed over every process, once ready",
                "goal": goal,
                "values": [rss for rss, _, _ in samples],
                "detail": "samples (RSS MB, PSS MB, processes): "
                + ", ".join(f"({rss:.0f}, {pss:.0f}, {count})" for rss, pss, count in samples),
            }
        )
    return rows
