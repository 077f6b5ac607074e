"""Enqueue a Celery task by its name once the current transaction commits.

Services enqueue through here and never import ``tasks`` (tasks import services):
a message in the broker carries ids only, and a worker never sees a row that was
rolled back.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction


def after_commit(task_name: str, *ids: str, countdown: float | None = None) -> None:
    transaction.on_commit(
        lambda: current_app.send_task(task_name, args=list(ids), countdown=countdown)
    )
