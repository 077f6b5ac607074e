"""``celery worker --beat-thread``: beat's scheduler as a thread of the worker process.

``make run`` starts one worker, so it needs no beat process of its own: that process would
load Django and every app again (about 95 MB) only to wake up once a second. Celery's own
``--beat`` embeds beat as a forked process, which costs the same. Where several workers run
(Docker, production), beat stays a process of its own, since exactly one beat may run.
"""

from __future__ import annotations

import socket
from typing import Any

import click
from celery import bootsteps
from celery.beat import EmbeddedService

OPTION = click.Option(
    ["--beat-thread"],
    is_flag=True,
    default=False,
    help="Run beat's scheduler in a thread of this worker (one worker only).",
)


class BeatThread(bootsteps.StartStopStep):
    label = "Beat (thread)"
    conditional = True

    def __init__(self, worker: Any, beat_thread: bool = False, **kwargs: Any) -> None:
        self.enabled = beat_thread
        self.service: Any = None
        super().__init__(worker, **kwargs)

    def create(self, worker: Any) -> Any:
        self.service = EmbeddedService(
            worker.app,
            thread=True,
            schedule_filename=worker.schedule_filename,
            scheduler_cls=worker.scheduler,
        )
        return self

    def start(self, worker: Any) -> None:
        from smtp_settings import heartbeats

        # A beat process reports its heartbeat from its beat_init signal; an embedded
        # scheduler gets no such signal, so it starts the same heartbeat here.
        heartbeats.beat_heartbeat_start(name=f"beat@{socket.gethostname()}")
        self.service.start()

    def stop(self, worker: Any) -> None:
        # Stops the scheduler between two ticks (at most a second): no task is cut short.
        self.service.stop()
