"""The embedded broker: kombu's file-system transport, with messages that appear whole.

kombu's own transport writes each message straight under its final name and a reader
never takes the writer's lock, so a worker listing the folder can take a file that is
still being written and fail to decode it (kombu issue #1551): the task is lost. Under
``make soak`` that was 134 of 3,000 messages. Here a message is written under a name no
reader looks for and renamed into place, which is atomic on one file system; a reader
claims a file by renaming it into the processed folder beside the queue (same file
system, so exactly one reader wins), never by a copy to the system's temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

from sei_admin import doorbell

# Readers take only names ending ".<queue>.msg" after the first dot; this prefix hides a
# message while it is written.
_WRITING_PREFIX = ".writing-"


def _bells_folder(queue_folder: str) -> str:
    """Beside the queue, not in it: the queue's folder holds messages only."""
    return os.path.join(os.path.dirname(os.path.abspath(queue_folder)), "bells")


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        writing = os.path.join(self.data_folder_out, _WRITING_PREFIX + name)
        try:
            with open(writing, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(writing, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(writing)
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc
        doorbell.ring(_bells_folder(self.data_folder_out))

    def _get(self, queue: str) -> Any:
        wanted = f"{queue}.msg"
        claimed_folder = self._claim_folder()
        try:
            names = sorted(os.listdir(self.data_folder_in))
        except FileNotFoundError:
            # The folder is away (moved aside, a volume not mounted yet): an empty queue until
            # it is back. Raised on, it stopped the worker for good ("Unrecoverable error").
            raise Empty() from None
        for name in names:
            if name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(claimed_folder, name)
            try:
                # Two readers may pick the same name: the rename lets one of them have it.
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except OSError:
                continue
            try:
                with open(claimed, "rb") as file:
                    payload = file.read()
                if not self.store_processed:
                    os.remove(claimed)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {claimed!r} from queue.") from exc
            return loads(bytes_to_str(payload))
        raise Empty()

    def _claim_folder(self) -> str:
        folder = str(self.processed_folder)
        os.makedirs(folder, exist_ok=True)
        return folder


# Celery's loop for polling transports waits up to 2 s in drain_events before it looks at its
# stop flag again, so an idle worker asked to stop took 5-6 s (honcho kills at 5): a shorter
# wait costs nothing, as the folder is listed every polling_interval either way.
_LONGEST_DRAIN_SECONDS = 0.25


class Transport(filesystem.Transport):
    Channel = Channel

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:
        if timeout is not None and timeout > _LONGEST_DRAIN_SECONDS:  # None blocks: left so
            timeout = _LONGEST_DRAIN_SECONDS
        folder = self.client.transport_options.get("data_folder_in")
        bell = doorbell.bell_for(_bells_folder(folder)) if folder else None
        if bell is None:
            return super().drain_events(connection, timeout=timeout)
        # kombu's loop, with its sleep between looks replaced by a wait on the bell.
        started = monotonic()
        while True:
            try:
                return self.cycle.get(self._deliver, timeout=timeout)
            except Empty:
                wait = self.polling_interval or _LONGEST_DRAIN_SECONDS
                if timeout is not None:
                    left = timeout - (monotonic() - started)
                    if left <= 0:
                        raise TimeoutError from None
                    wait = min(wait, left)
                bell.wait(wait)
