"""Heartbeats: each worker and the beat scheduler say they run, so that the pages and
``/healthz`` can tell a silent background from an idle one."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import Max
from django.utils import timezone

from smtp_settings.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


def worker_heartbeat_record(*, worker: str, role: str = WorkerHeartbeat.WORKER) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        worker=worker[:255], defaults={"seen_at": timezone.now(), "role": role}
    )
    return heartbeat


def beat_heartbeat_start(*, name: str) -> threading.Thread:
    """In the beat process: report every SEI_HEARTBEAT_SECONDS that beat runs (health endpoint)."""

    def beat() -> None:
        while True:
            try:
                worker_heartbeat_record(worker=name, role=WorkerHeartbeat.BEAT)
            except DatabaseError:
                logger.warning("Beat could not record its heartbeat", exc_info=True)
            finally:
                close_old_connections()
            time.sleep(settings.SEI_HEARTBEAT_SECONDS)

    thread = threading.Thread(target=beat, name="beat-heartbeat", daemon=True)
    thread.start()
    return thread


def heartbeat_age(role: str, *, now: datetime | None = None) -> float | None:
    """Seconds since a process of this role (worker or beat) last reported; None if never."""
    seen = WorkerHeartbeat.objects.filter(role=role).aggregate(at=Max("seen_at"))["at"]
    if seen is None:
        return None
    return ((now or timezone.now()) - seen).total_seconds()


def heartbeat_stale_after() -> float:
    return WorkerHeartbeat.stale_after()
