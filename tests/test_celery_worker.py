"""A real Celery worker, on the configured broker (Redis in CI), runs the app's tasks."""

from __future__ import annotations

import time
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from sei_admin.celery import app
from smtp_settings import tasks
from smtp_settings.models import WorkerHeartbeat

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_tasks_carry_json_only() -> None:
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_a_real_worker_runs_the_heartbeat_task_end_to_end() -> None:
    print("broker:", settings.CELERY_BROKER_URL.split("@")[-1])
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        tasks.worker_heartbeat.delay()
        assert wait_for(lambda: WorkerHeartbeat.objects.exists()), "the worker never ran the task"
    heartbeat = WorkerHeartbeat.objects.get()
    assert heartbeat.worker
