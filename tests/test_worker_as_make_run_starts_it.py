"""The worker as the Procfile starts it (`make run`): a threads pool of two with beat's
scheduler in a thread, on the configured broker. Beat's chores run without a beat process,
and SIGTERM (what Ctrl-C on `make run` becomes) lets the message in flight finish."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from smtp_settings.models import Delivery, DeliveryState, WorkerHeartbeat
from soak.brokers import PrivateRedis

from .sandbox.exchange import free_port
from .sandbox.world import SENDER
from .test_outbox_worker import ROOT, start_worker, wait_for
from .test_sending import save

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


def procfile_worker_arguments() -> list[str]:
    """The worker's arguments from the Procfile itself, so the test follows what `make run` runs."""
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("worker:")
    )
    command = re.search(r"celery -A sei_admin worker ([^;]*);", line)
    assert command, line
    return command.group(1).split()


@pytest.fixture
def procfile_worker(
    sandbox: Any, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(**extra_env: str) -> subprocess.Popen[bytes]:
        process = start_worker(
            [*procfile_worker_arguments(), "--schedule-filename",
             str(tmp_path / "celerybeat-schedule")],
            sandbox=sandbox, log=tmp_path / f"worker-{len(started)}.log",
            **{"DJANGO_LOG_LEVEL": "INFO", **extra_env},
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


def test_the_procfile_runs_no_beat_process_and_beats_chores_still_run(
    procfile_worker: Any, db: Any
) -> None:
    assert not any(
        line.startswith("beat:") for line in (ROOT / "Procfile").read_text().splitlines()
    )
    started = timezone.now()
    procfile_worker(SEI_HEARTBEAT_SECONDS="1")
    # The worker reports once as it starts; beat's schedule then asks it again every second.
    wait_for(lambda: WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.BEAT).exists())
    wait_for(lambda: WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.WORKER).exists())
    first = WorkerHeartbeat.objects.get(role=WorkerHeartbeat.WORKER).seen_at
    wait_for(
        lambda: (
            WorkerHeartbeat.objects.get(role=WorkerHeartbeat.WORKER).seen_at
            > first + timezone.timedelta(seconds=1)
        )
    )
    assert WorkerHeartbeat.objects.get(role=WorkerHeartbeat.BEAT).seen_at >= started


def test_sigterm_lets_the_message_in_flight_finish_and_leaves_the_rest_queued(
    sandbox: Any, procfile_worker: Any, tmp_path: Path
) -> None:
    save(sandbox.form_values())
    # A slow server: each message takes a second and a half, so a drain of eight would
    # take twelve, well past the five seconds honcho waits before SIGKILL.
    sandbox.exchange.handler.data_delay_seconds = 1.5
    for n in range(8):
        mail.send_mail(f"Stop {n}", "Body", SENDER, ["it@x.example"])
    worker = procfile_worker()
    wait_for(lambda: sandbox.exchange.handler.data_commands >= 2)  # the second is in flight

    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    log = (tmp_path / "worker-0.log").read_text()
    assert "Warm shutdown" in log
    assert " ERROR " not in log and "Traceback" not in log, log

    states = list(Delivery.objects.order_by("pk").values_list("state", flat=True))
    received = len(sandbox.exchange.delivered)
    # Every message the server was given was answered and recorded as sent, and the worker
    # did not stay to deliver the rest: they wait, unclaimed, for the next worker.
    assert received == sandbox.exchange.handler.data_commands >= 2
    assert states[:received] == [DeliveryState.SENT] * received
    assert states[received:] == [DeliveryState.QUEUED] * (8 - received)
    assert received < 8
    assert not Delivery.objects.filter(claimed_until__gt=timezone.now()).exists()


def test_sending_resumes_within_15_seconds_after_the_whole_worker_is_killed(
    sandbox: Any, procfile_worker: Any
) -> None:
    save(sandbox.form_values())
    for n in range(200):
        mail.send_mail(f"Kill {n}", "Body", SENDER, ["it@x.example"])
    worker = procfile_worker(SMTP_MAX_MESSAGES_PER_MINUTE="1200")
    wait_for(lambda: len(sandbox.exchange.delivered) >= 10)
    # SIGKILL to the whole process (its pool's threads and beat's with it), as the OOM killer
    # or `kill -9` would; the Procfile's loop starts a new one 2 s later.
    os.killpg(worker.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    worker.wait(timeout=10)
    time.sleep(0.5)  # what was on its way to the server arrives just after: not counted
    before = len(sandbox.exchange.delivered)
    assert before < 200, "the backlog was sent before the kill"
    time.sleep(1.5)
    procfile_worker(SMTP_MAX_MESSAGES_PER_MINUTE="1200")
    wait_for(lambda: len(sandbox.exchange.delivered) > before, timeout=30)
    resumed_after = time.monotonic() - killed_at
    assert resumed_after < 15, f"sending resumed {resumed_after:.1f} s after the kill"


def test_after_a_broker_cut_the_worker_looks_for_due_mail_as_it_reconnects(
    sandbox: Any, procfile_worker: Any, tmp_path: Path, settings: Any
) -> None:
    if not settings.REDIS_URL:
        pytest.skip("the broker cut is a private redis-server's restart")
    save(sandbox.form_values())
    broker = PrivateRedis(free_port(), tmp_path / "redis").start()
    try:
        # Beat's sweep far away: only the worker's reconnection can start delivery in time.
        procfile_worker(
            REDIS_URL=broker.url, SMTP_OUTBOX_SWEEP_SECONDS="600", SEI_HEARTBEAT_SECONDS="600"
        )
        wait_for(lambda: WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.WORKER).exists())
        broker.cut()
        # Accepted while the broker is away: the request for delivery cannot reach the worker
        # (this test process's broker is another Redis database, as good as gone for it).
        for n in range(5):
            mail.send_mail(f"During the cut {n}", "Body", SENDER, ["it@x.example"])
        broker.restore()
        wait_for(lambda: len(sandbox.exchange.delivered) == 5, timeout=60)
    finally:
        broker.stop()
