"""The embedded broker (sei_admin.broker): a reader never takes a message that is still
being written, and of readers racing for one message exactly one gets it."""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from django.conf import settings
from kombu import Connection

from sei_admin.broker import Transport

QUEUE = "soak-queue"


def connection(folder: Path, transport: Any = Transport) -> Connection:
    for sub in ("queue", "control", "processed"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return Connection(
        "filesystem://localhost/",
        transport=transport,
        transport_options={
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
        },
    )


def test_the_console_uses_this_transport_when_no_redis_is_named() -> None:
    if settings.REDIS_URL:
        pytest.skip("the tests run on Redis")
    from sei_admin.celery import app

    with app.connection_for_write() as conn:
        assert conn.transport_cls is Transport or isinstance(conn.transport, Transport)


def test_a_message_being_written_is_not_taken(tmp_path: Path) -> None:
    with connection(tmp_path) as conn:
        channel = conn.default_channel
        # What a writer leaves while it writes: the name readers skip, half the content.
        name = f"1_{'0' * 8}.{QUEUE}.msg"
        (tmp_path / "queue" / f".writing-{name}").write_bytes(b'{"body": "half')
        with pytest.raises(Empty):
            channel._get(QUEUE)

        channel._put(QUEUE, {"body": "whole"})
        assert channel._get(QUEUE) == {"body": "whole"}
        # Nothing left behind by the put (only the half-written file of this test).
        assert os.listdir(tmp_path / "queue") == [f".writing-{name}"]
        assert os.listdir(tmp_path / "processed") == []


def test_a_queue_folder_gone_for_a_while_reads_as_empty_and_then_as_before(
    tmp_path: Path,
) -> None:
    with connection(tmp_path) as conn:
        channel = conn.default_channel
        channel._put(QUEUE, {"body": "waits"})
        (tmp_path / "queue").rename(tmp_path / "away")  # as make soak cuts this broker
        with pytest.raises(Empty):
            channel._get(QUEUE)
        (tmp_path / "away").rename(tmp_path / "queue")
        assert channel._get(QUEUE) == {"body": "waits"}


def test_racing_readers_get_every_message_whole_and_once(tmp_path: Path) -> None:
    """Large messages written while four readers poll: kombu's own transport hands some of
    them over half-written (issue #1551); this one none, and none twice."""
    count, size = 200, 256 * 1024
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    done = threading.Event()

    def read() -> None:
        with connection(tmp_path) as conn:
            channel = conn.default_channel
            while True:
                try:
                    payload = channel._get(QUEUE)
                except Empty:
                    if done.is_set() and not os.listdir(tmp_path / "queue"):
                        return
                    continue
                except Exception as exc:  # a half-written message does not decode
                    errors.append(exc)
                    return
                assert len(payload["padding"]) == size
                with lock:
                    got.append(payload["n"])

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    with connection(tmp_path) as conn:
        for n in range(count):
            conn.default_channel._put(QUEUE, {"n": n, "padding": "x" * size})
    done.set()
    for reader in readers:
        reader.join(timeout=60)
    assert not errors, errors[:3]
    assert sorted(got) == list(range(count))


def test_a_put_rings_every_consumer_waiting_on_the_folder(tmp_path: Path) -> None:
    """A consumer hears of a message at once instead of at its next look at the folder; a
    pipe whose consumer died (SIGKILL, no atexit) is cleared, and ringing it does no harm."""
    from sei_admin import doorbell

    bells = tmp_path / "bells"
    bells.mkdir()
    # Above the largest pid Linux gives out (4194304): no process has it.
    os.mkfifo(bells / "9999999.bell")
    with connection(tmp_path) as conn:
        bell = doorbell.bell_for(str(bells))
        assert bell is not None
        assert list(bells.iterdir()) == [bells / f"{os.getpid()}.bell"]
        assert select.select([bell.descriptor], [], [], 0)[0] == []
        conn.default_channel._put(QUEUE, {"body": "wake up"})
        assert select.select([bell.descriptor], [], [], 0)[0] == [bell.descriptor]
        bell.wait(0)  # what was rung is read away: the next wait waits again
        assert select.select([bell.descriptor], [], [], 0)[0] == []
        assert conn.default_channel._get(QUEUE) == {"body": "wake up"}
