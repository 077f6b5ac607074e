"""The Celery application: configured from Django settings (``CELERY_*``)."""

from __future__ import annotations

import gc
import logging
import os
import socket
from typing import Any

from celery import Celery, bootsteps
from celery.signals import beat_init, task_postrun, task_prerun, worker_init, worker_ready

from sei_admin.beat_thread import OPTION as BEAT_THREAD_OPTION
from sei_admin.beat_thread import BeatThread

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sei_admin.settings")

app = Celery("sei_admin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["sei_admin"])
app.steps["worker"].add(BeatThread)
app.user_options["worker"].add(BEAT_THREAD_OPTION)


@beat_init.connect
def _beat_heartbeat(**kwargs: Any) -> None:
    from smtp_settings import heartbeats

    heartbeats.beat_heartbeat_start(name=f"beat@{socket.gethostname()}")


@worker_ready.connect
def _worker_ready(sender: Any = None, **kwargs: Any) -> None:
    # Reported at once, not a heartbeat interval later: the pages and /healthz see the worker.
    from django.db import DatabaseError

    from smtp_settings import heartbeats

    try:
        heartbeats.worker_heartbeat_record(worker=getattr(sender, "hostname", None) or "worker")
    except DatabaseError as error:  # not migrated yet: the scheduled heartbeat reports later
        logging.getLogger(__name__).warning("No heartbeat recorded at start: %s", error)
    # What start-up loaded (Django, Celery, the apps) lives as long as the worker: out of the
    # collector's sight, its full collections no longer walk it between two messages.
    gc.freeze()


class DeliveryOnConnect(bootsteps.StartStopStep):
    """Looks for due mail each time the worker has (again) a broker connection.

    A worker starting after a crash finds the outbox where the dead one left it, and the task
    that was delivering it died too; after a broker cut, the requests made while it was away
    are gone (Redis restarted empty) or were never made (the web could not reach it). Either
    way, delivery starts now, not at beat's next sweep. Celery starts a consumer's steps again
    after every reconnection.
    """

    label = "Outbox delivery on connect"
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, consumer: Any) -> None:
        from django.db import DatabaseError

        from smtp_settings import outbox

        try:
            outbox.outbox_delivery_request_if_pending()
        except DatabaseError as error:  # not migrated yet: beat's sweep asks later
            logging.getLogger(__name__).warning("Outbox not looked at on connect: %s", error)


app.steps["consumer"].add(DeliveryOnConnect)


@task_prerun.connect
def _task_started(sender: Any = None, task_id: str = "", **kwargs: Any) -> None:
    from smtp_settings import enqueue

    enqueue.task_started(getattr(sender, "name", ""), task_id or "")


@worker_init.connect
def _keep_connections(**kwargs: Any) -> None:
    """In the worker only: its database connections live SEI_WORKER_CONN_MAX_AGE seconds."""
    from django.conf import settings

    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = settings.SEI_WORKER_CONN_MAX_AGE


@task_prerun.connect
@task_postrun.connect
def _drop_broken_connections(**kwargs: Any) -> None:
    # A connection that failed (a database restarted) or outlived its age goes before and
    # after each task, as Django does around each request.
    from django.db import close_old_connections

    close_old_connections()
