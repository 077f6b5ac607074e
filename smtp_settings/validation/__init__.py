"""Validate: the steps that prove unsaved settings end to end; the table explaining failures.

Its face: callers use ``from smtp_settings import validation`` and
``validation.validation_run_start(...)``; ``runner``, ``token_check`` and ``progress`` are
its own (``diagnosis`` is read by the outbox and the health check too).
"""

from __future__ import annotations

from smtp_settings.validation.service import (
    VALIDATE_TASK,
    ValidationNotStarted,
    validation_recent_runs,
    validation_run_as_dict,
    validation_run_execute,
    validation_run_start,
    validation_runs_expire_abandoned,
    validation_runs_purge,
)
