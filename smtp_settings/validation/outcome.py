"""What a validation step hands back, and what a transport's steps may ask of the run they
belong to. Both live here, apart from the runner, so that the runner can call a
transport's steps (graph_steps) without those steps importing the runner back."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from smtp_settings import diagnosis
from smtp_settings.mail import endpoint, oauth
from smtp_settings.models import StepStatus, ValidationRun


@dataclass
class Outcome:
    """How a step ended; a step that raises nothing passed."""

    status: str = StepStatus.PASSED
    detail: str = ""
    answer: str = ""
    facts: list[list[str]] = field(default_factory=list)
    finding: diagnosis.Finding | None = None
    # What the step took on the wire when it ran ahead of its turn (early_session).
    seconds: float | None = None


class StepRows(Protocol):
    def skip(self, keys: list[str], reason: str) -> None: ...


class StepRunner(Protocol):
    """The part of a validation run a transport's steps use."""

    run_row: ValidationRun
    mail: endpoint.MailSettings
    timeout: float
    token: oauth.Token | None
    fill: dict[str, str]
    evidence: diagnosis.Evidence
    scope: str
    rows: StepRows

    def step(self, key: str) -> AbstractContextManager[Outcome]: ...

    def _diagnose(self, step: str, **kwargs: Any) -> diagnosis.Finding | None: ...
