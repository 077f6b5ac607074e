"""The broker a soak run cuts: a private redis-server of its own, or the file-system
broker's folder. The shared Redis server that REDIS_URL names is never stopped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


class PrivateRedis:
    """A redis-server on 127.0.0.1:<port> for this run only, without persistence: a cut
    loses whatever it held, as a Redis restarted without its data would."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port = port
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("soak: REDIS_URL is set but redis-server is not installed")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        if _port_open(self.port):
            raise SystemExit(f"soak: 127.0.0.1:{self.port} is taken; set SOAK_REDIS_PORT")
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603  (our own server, fixed arguments)
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _port_open(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"soak: redis-server did not start (see {self.folder})")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    # The cut: the server goes away and comes back empty.
    cut = stop
    restore = start


class FolderCut:
    """The file-system broker made unavailable: its folder moved aside and back."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.aside = folder.with_name(folder.name + "-cut")

    def cut(self) -> None:
        os.rename(self.folder, self.aside)

    def restore(self) -> None:
        # A process starting during the cut makes the folder again (settings create it):
        # what was written there joins what was set aside.
        if self.folder.exists():
            for path in sorted(self.folder.rglob("*")):
                if path.is_file():
                    target = self.aside / path.relative_to(self.folder)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
            shutil.rmtree(self.folder)
        os.rename(self.aside, self.folder)

    def stop(self) -> None:
        if self.aside.exists() and not self.folder.exists():
            self.restore()


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
