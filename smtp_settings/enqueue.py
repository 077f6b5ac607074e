"""Enqueue a Celery task by its name once the current transaction commits.

Services enqueue through here and never import ``tasks`` (tasks import services):
a message in the broker carries ids only, and a worker never sees a row that was
rolled back.

Two marks in the shared cache keep a backlog from starving what someone waits for:

- *interactive waiting*: a count of the tasks routed to ``SEI_INTERACTIVE_QUEUE`` that were
  enqueued here and have not started. Each such task has a mark of its own (by task id), so a
  task nobody waits for on the same queue (beat's heartbeat) starting cannot clear another's
  wait. A long task (an outbox drain) looks at the count between two units of work and hands
  its process over.
- *one waiting* (``after_commit_once``): at most one message of a task waits in the broker;
  set on enqueue with the time the task is due, deleted when a task of that name starts. A
  lost task (its worker killed after taking it) cannot block the next one for long: the mark
  has a time to live.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import current_app, uuid
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

_INTERACTIVE_COUNT_KEY = "enqueue:interactive-waiting"
# A click's task starts within a second or two once a process is free; a mark left by a task
# lost on its way (or with no worker on the queue) stops slowing drains down after this.
_INTERACTIVE_MARK_SECONDS = 15
# A task waiting longer than this (every process busy) lets a second one be enqueued.
_ONCE_MARK_SECONDS = 30
# Due times closer than this count as the same.
_SAME_TIME_SECONDS = 1.0

logger = logging.getLogger(__name__)


def after_commit(task_name: str, *ids: str, countdown: float | None = None) -> None:
    def send() -> None:
        task_id = uuid()
        if is_interactive(task_name):
            # Before the message exists: a drain must see the mark by the time a worker could
            # reserve the message, and the task's start (which removes it) comes after this.
            _mark_interactive(task_id)
        current_app.send_task(task_name, args=list(ids), countdown=countdown, task_id=task_id)

    transaction.on_commit(send)


def after_commit_once(
    task_name: str, *, countdown: float = 0.0, distrust_mark: bool = False
) -> None:
    """Enqueue a task that takes no arguments unless one already waits that starts no later.

    ``distrust_mark``: enqueue it anyway and mark it as the one waiting. A worker starting
    after a crash does so: the task the mark speaks of may have been reserved by the dead
    worker, and would come back only when the broker gives up on that worker.
    """

    def send() -> None:
        due = time.time() + countdown
        key = _once_key(task_name)
        timeout = int(countdown + _ONCE_MARK_SECONDS)
        if distrust_mark:
            cache.set(key, due, timeout=timeout)
        elif not cache.add(key, due, timeout=timeout):
            waiting = cache.get(key)
            if waiting is not None and waiting <= due + _SAME_TIME_SECONDS:
                return
            # The one waiting starts later (a countdown): this one is due sooner.
            cache.set(key, due, timeout=timeout)
        current_app.send_task(task_name, countdown=countdown or None)

    def send_or_leave_to_the_sweep() -> None:
        # What this asks for is also asked by beat's sweep and by every worker as it connects:
        # with the broker or the cache away (a Redis restart), the caller's work is committed
        # and must not fail for want of a reminder.
        try:
            send()
        except Exception as error:  # redis, kombu and socket errors alike
            logger.warning("%s not enqueued now (%s); a worker takes it up later", task_name, error)

    transaction.on_commit(send_or_leave_to_the_sweep)


def task_started(task_name: str, task_id: str = "") -> None:
    """Called as every task starts (a Celery signal): the marks it answers are deleted."""
    if task_id and cache.delete(_interactive_key(task_id)):
        try:
            if cache.decr(_INTERACTIVE_COUNT_KEY) <= 0:
                cache.delete(_INTERACTIVE_COUNT_KEY)
        except ValueError:  # the count lived out its time: nothing waits any more
            pass
    key = _once_key(task_name)
    due = cache.get(key)
    # A mark for a later countdown stays: that task still waits.
    if due is not None and due <= time.time() + _SAME_TIME_SECONDS:
        cache.delete(key)


def interactive_waiting() -> bool:
    """Whether a task someone waits for is queued and not started yet."""
    return interactive_waiting_and()[0]


def interactive_waiting_and(*keys: str) -> tuple[bool, dict[str, Any]]:
    """``interactive_waiting()`` and the values of other marks in the shared cache, in one
    read: a drain asks between two messages, and on Redis every read is a round trip."""
    found = cache.get_many([_INTERACTIVE_COUNT_KEY, *keys])
    return (found.pop(_INTERACTIVE_COUNT_KEY, 0) or 0) > 0, found


def worker_stopping() -> bool:
    """Whether the worker this code runs in was asked to stop (SIGTERM, Ctrl-C): a long task
    ends between two units of work so that the warm shutdown waits for one, not for all.
    Seen by the threads and solo pools, which run tasks in the worker's own process."""
    from celery.worker import state

    return state.should_stop is not None or state.should_terminate is not None


def is_interactive(task_name: str) -> bool:
    route = settings.CELERY_TASK_ROUTES.get(task_name) or {}
    return route.get("queue") == settings.SEI_INTERACTIVE_QUEUE


def _mark_interactive(task_id: str) -> None:
    cache.set(_interactive_key(task_id), True, timeout=_INTERACTIVE_MARK_SECONDS)
    cache.add(_INTERACTIVE_COUNT_KEY, 0, timeout=_INTERACTIVE_MARK_SECONDS)
    try:
        cache.incr(_INTERACTIVE_COUNT_KEY)
    except ValueError:  # expired between the two calls
        cache.set(_INTERACTIVE_COUNT_KEY, 1, timeout=_INTERACTIVE_MARK_SECONDS)
    # The count lives as long as the newest mark: tasks lost on their way stop counting then.
    cache.touch(_INTERACTIVE_COUNT_KEY, timeout=_INTERACTIVE_MARK_SECONDS)


def _interactive_key(task_id: str) -> str:
    return f"enqueue:interactive:{task_id}"


def _once_key(task_name: str) -> str:
    return f"enqueue:waiting:{task_name}"
