"""The watch on the background: a worker or beat that stops reporting is alerted, and so is
its return. The alert cannot wait for a task (the worker may be what is gone), so the web
process watches too: gunicorn starts this in each of its processes (gunicorn.conf.py), and
the occurrence keys make several watchers alert once."""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection
from django.urls import reverse
from django.utils import timezone

from alerting.models import Alert
from alerting.service import alert_raise
from smtp_settings.links import console_url
from smtp_settings.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

_NAMES = {WorkerHeartbeat.WORKER: "Celery worker", WorkerHeartbeat.BEAT: "Celery beat"}
# What waits while each is gone.
_WAITS = {
    WorkerHeartbeat.WORKER: "the console sends no mail and runs no Validate: messages wait in "
    "the outbox",
    WorkerHeartbeat.BEAT: "no reminders, health checks or retries of deferred mail are scheduled",
}
# What goes on again when each returns.
_RESUMES = {
    WorkerHeartbeat.WORKER: "waiting mail leaves now",
    WorkerHeartbeat.BEAT: "reminders, health checks and retries of deferred mail are scheduled "
    "again",
}


def quiet_processes_alert(*, silence_counts: bool = True) -> None:
    """Alert a role whose latest report is older than the stale limit, once per silence
    (keyed by that report's time), and its return once per silence. ``silence_counts``
    False: only returns are alerted (a watch that just started, see watch_forever)."""
    now = timezone.now()
    for role, name in _NAMES.items():
        latest = WorkerHeartbeat.objects.filter(role=role).order_by("-seen_at").first()
        if latest is None:
            continue  # never reported: nothing started yet, not something that stopped
        silent = (now - latest.seen_at).total_seconds()
        if silent > WorkerHeartbeat.stale_after():
            if silence_counts:
                _alert_quiet(role, name, latest)
        else:
            _alert_back(role, name, latest)


def _alert_quiet(role: str, name: str, latest: WorkerHeartbeat) -> None:
    since = timezone.localtime(latest.seen_at)
    alert_raise(
        key=f"quiet:{role}:{latest.seen_at.isoformat()}",
        kind=f"{role}.quiet",
        title=f"The {name} stopped reporting",
        body=f"The {name} ({latest.worker}) last reported at {since:%Y-%m-%d %H:%M:%S %Z}. "
        f"Until it runs again {_WAITS[role]}. Start it again (make run, or your service "
        "manager) and look at its log for why it stopped.\n\nBackground processing: "
        f"{console_url(reverse('administration'))}",
        drops_pending=(f"{role}.back",),
    )


def _alert_back(role: str, name: str, latest: WorkerHeartbeat) -> None:
    silence = Alert.objects.filter(kind=f"{role}.quiet").order_by("-raised_at", "-pk").first()
    if silence is None:
        return
    alert_raise(
        key=f"back:{silence.key}",
        kind=f"{role}.back",
        title=f"The {name} runs again",
        body=f"The {name} ({latest.worker}) reports again since "
        f"{timezone.localtime(latest.seen_at):%Y-%m-%d %H:%M:%S %Z}: {_RESUMES[role]}.",
        drops_pending=(f"{role}.quiet",),
    )


def watch_forever(*, interval: float, stop: threading.Event) -> None:
    # When the console starts, the last reports are as old as its last stop and the worker
    # is still starting: a silence counts once the worker had the time to report.
    counts_from = time.monotonic() + WorkerHeartbeat.stale_after()
    while not stop.is_set():
        try:
            quiet_processes_alert(silence_counts=time.monotonic() >= counts_from)
        except Exception:  # a database restart must not end the watch
            logger.warning("The watch on the background could not look this time", exc_info=True)
        finally:
            connection.close()
        stop.wait(interval)


def start(*, interval: float | None = None) -> threading.Event:
    """Watch in a thread of this process until the returned event is set."""
    from django.conf import settings

    stop = threading.Event()
    threading.Thread(
        target=watch_forever,
        kwargs={"interval": interval or float(settings.SEI_HEARTBEAT_SECONDS), "stop": stop},
        name="background-watch",
        daemon=True,
    ).start()
    return stop
