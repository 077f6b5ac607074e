"""Validation runs: start one (web), execute it (worker), expire abandoned ones, read them.

``validation_run_start`` stores the run and enqueues it by id;
``validation_run_execute`` runs the steps and erases the secret under test when done.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from activity.models import Kind
from activity.service import activity_record
from smtp_settings import diagnosis, enqueue
from smtp_settings.credentials.model import Credential, credential_check_noted
from smtp_settings.credentials.model import Kind as CredentialKind
from smtp_settings.mail import certificate
from smtp_settings.models import (
    CONNECTION_FIELDS,
    SECRET_FIELD_BY_AUTH_TYPE,
    AuthType,
    Delivery,
    DeliveryState,
    RunScope,
    RunStatus,
    SmtpSettings,
    StepStatus,
    ValidationRun,
    ValidationStep,
    WorkerHeartbeat,
    blank_secret_moved,
    readable_secret,
    run_target,
    settings_fingerprint,
)
from smtp_settings.validation import progress
from smtp_settings.validation.runner import Runner, steps_for

logger = logging.getLogger(__name__)

VALIDATE_TASK = "smtp_settings.tasks.validate_smtp_settings"


class ValidationNotStarted(Exception):
    """A guard rail refused to start a run; the message says why and when to retry."""


# -- starting a run (web process) -------------------------------------------------------


def _candidate_extras(
    candidate: dict[str, Any], *, notes: list[str] | None, mailboxes: list[str] | None, scope: str
) -> list[str]:
    """Notes said with the verdict and the extra mailboxes, kept on the candidate; the
    extra mailboxes returned (a full run's only)."""
    if candidate.get("credential"):
        notes = [f"This run tested this credential: {candidate['credential']}.", *(notes or [])]
    if notes:
        candidate["notes"] = list(notes)
    extra = mailboxes if scope == RunScope.FULL and mailboxes else []
    if extra:
        candidate["mailboxes"] = list(extra)
    return extra


@sensitive_variables("values", "secret", "entered")
def validation_run_start(
    *,
    values: Mapping[str, Any],
    user: AbstractBaseUser,
    test_recipient: str = "",
    notes: list[str] | None = None,
    scope: str = RunScope.FULL,
    mailboxes: list[str] | None = None,
    credential_id: int | None = None,
    pk: int = SmtpSettings.SINGLETON_PK,
) -> ValidationRun:
    """Record a run of validated form values and enqueue it once the row is committed.

    A blank secret means "the stored one", as Save treats it. ``scope`` runs part of the
    steps (the setup assistant's checks); a tenant check sends no secret at all. ``mailboxes``:
    more mailboxes to sign in as, each on its own session. ``credential_id``: a stored
    credential to test instead of the one in use. A block below, not a decorator: the
    decorator's frame would show the arguments in error reports, secrets too."""
    with transaction.atomic():
        _check_guard_rails(user)
        # Locked: a Save cannot slip between this read and the check below.
        stored = (
            # ``pk``: the fallback connection's row when its page asks (a blank secret is its).
            SmtpSettings.objects.select_for_update().filter(pk=pk).first() or SmtpSettings(pk=pk)
        )
        candidate = {name: values.get(name, getattr(stored, name)) for name in CONNECTION_FIELDS}
        # A tenant check sends no secret at all.
        secret = (
            ""
            if scope == RunScope.TENANT
            else _secret_to_send(stored, values, candidate, credential_id=credential_id)
        )
        extra = _candidate_extras(candidate, notes=notes, mailboxes=mailboxes, scope=scope)
        run = ValidationRun.objects.create(
            requested_by=user,
            candidate=candidate,
            candidate_secret=secret or None,
            test_recipient=test_recipient,
            scope=scope,
            fingerprint=settings_fingerprint(candidate, candidate.get("proof") or secret)
            if scope == RunScope.FULL
            else "",
            connection=pk,
        )
        ValidationStep.objects.bulk_create(
            ValidationStep(run=run, position=position, key=key, name=name)
            for position, (key, name) in enumerate(
                steps_for(scope, extra, str(candidate.get("transport") or "smtp"))
            )
        )
        enqueue.after_commit(VALIDATE_TASK, str(run.id))
        activity_record(
            kind=Kind.VALIDATION_STARTED,
            summary=_started_summary(scope, candidate, test_recipient, connection=pk),
            actor=user,
        )
        _started_log(run, user)
        return run


@sensitive_variables("values", "entered")
def _secret_to_send(
    stored: SmtpSettings,
    values: Mapping[str, Any],
    candidate: dict[str, Any],
    *,
    credential_id: int | None = None,
) -> str:
    """The secret the run signs in with: the one entered, or a stored credential (the one
    in use, or ``credential_id``) while the candidate leaves it where it was entered.
    Notes its source in ``candidate``; a certificate is named there (``credential_id``)
    and read by the worker, its key never in the run's row."""
    secret_field = SECRET_FIELD_BY_AUTH_TYPE.get(candidate["auth_type"])
    if not secret_field:
        return ""
    entered = "" if credential_id else values.get(secret_field) or ""
    candidate["secret_source"] = "entered" if entered else "stored"
    if entered and values.get("client_certificate_pem"):
        # The setup assistant's certificate: its key is the run's encrypted secret.
        thumbprint = certificate.thumbprint_of(values["client_certificate_pem"])
        candidate["certificate_pem"] = values["client_certificate_pem"]
        candidate["proof"] = f"certificate:{thumbprint}"
        candidate["credential"] = f"certificate {thumbprint} (not saved yet)"
    if entered:
        return entered
    credential = (
        Credential.objects.filter(pk=credential_id, auth_type=candidate["auth_type"]).first()
        if credential_id
        else stored.credential(candidate["auth_type"])
    )
    if credential is None and credential_id:
        raise ValidationNotStarted("That credential was removed meanwhile.")
    if (credential is not None and credential.moved_by(candidate)) or (
        credential_id is None and blank_secret_moved(stored, {**candidate, secret_field: ""})
    ):
        raise ValidationNotStarted(
            "The stored settings changed since the page was opened: enter the secret "
            "again (a stored secret is only ever sent where it was entered)."
        )
    if credential is None:
        return ""
    candidate["credential"] = f"{credential.name} ({credential.get_role_display().lower()})"
    if credential_id:
        candidate["credential_id"] = credential.pk
    if credential.kind == CredentialKind.CERTIFICATE:
        candidate["credential_id"] = credential.pk
        candidate["proof"] = f"certificate:{credential.thumbprint}"
        return ""
    # The form already refused a blank secret when the stored one is unreadable.
    return readable_secret(credential.material)


def _started_log(run: ValidationRun, user: AbstractBaseUser) -> None:
    # Where Validate connects, for audit: it can point anywhere an administrator types.
    candidate = run.candidate
    logger.info(
        "%s %s by %s: %s, %s, TLS %s, token endpoint %s",
        RunScope(run.scope).label,
        run.id,
        user.get_username(),
        run.target,
        candidate["auth_type"],
        # Graph is HTTPS, TLS always; Use SSL/TLS is SMTP's.
        "on" if candidate["use_ssl_tls"] or candidate.get("transport") == "graph" else "off",
        candidate.get("token_endpoint") or "-",
    )


# A queued run no worker took within this is given up. Runs have a queue of their own and
# outbox drains hand their process over between two messages, so a running worker takes a
# run within seconds even behind a backlog.
QUEUED_FOR_AT_MOST = timedelta(seconds=90)


def _quiet_for_at_most() -> timedelta:
    """A running run ends a step at least this often: each step has one deadline."""
    return timedelta(seconds=2 * settings.SMTP_NETWORK_TIMEOUT_SECONDS + 10)


def validation_runs_expire_abandoned(*, run_id: str | None = None) -> int:
    """Runs no worker took in time, or whose worker went quiet (killed, crashed), end as
    errors and lose their secret: the next Validate click is not refused because of them."""
    now = timezone.now()
    quiet_since = now - _quiet_for_at_most()
    # A run's heartbeat is its claim, then the end of each step.
    step_ended_lately = ValidationStep.objects.filter(run=OuterRef("pk"), ended_at__gte=quiet_since)
    abandoned = ValidationRun.objects.filter(
        Q(status=RunStatus.QUEUED, created_at__lt=now - QUEUED_FOR_AT_MOST)
        | Q(status=RunStatus.RUNNING, heartbeat_at__lt=quiet_since)
        | Q(status=RunStatus.RUNNING, heartbeat_at=None, created_at__lt=quiet_since)
    ).exclude(Q(status=RunStatus.RUNNING) & Exists(step_ended_lately))
    if run_id is not None:
        abandoned = abandoned.filter(pk=run_id)
    found = list(abandoned.values_list("pk", "status"))
    if not found:
        return 0
    ids = [pk for pk, _ in found]
    expired = 0
    if any(status == RunStatus.QUEUED for _, status in found):
        expired += ValidationRun.objects.filter(pk__in=ids, status=RunStatus.QUEUED).update(
            status=RunStatus.ERROR,
            finished_at=now,
            candidate_secret=None,
            summary=f"No worker took this run in {int(QUEUED_FOR_AT_MOST.total_seconds())} "
            f"seconds: {_why_no_worker_took_it()} Click Validate again.",
        )
    expired += ValidationRun.objects.filter(pk__in=ids, status=RunStatus.RUNNING).update(
        status=RunStatus.ERROR,
        finished_at=now,
        candidate_secret=None,
        summary="The worker running this run stopped before it finished (killed, or out of "
        "memory). Check the worker's log, then click Validate again.",
    )
    ValidationStep.objects.filter(
        run__in=ids, status__in=[StepStatus.PENDING, StepStatus.RUNNING]
    ).update(status=StepStatus.SKIPPED, detail="Not run: the worker stopped.")
    for expired_id in ids:
        progress.touch(expired_id, final=True)
    return expired


def _started_summary(
    scope: str, candidate: Mapping[str, Any], test_recipient: str, *, connection: int
) -> str:
    if scope == RunScope.TENANT:
        return f"Tenant check started: {candidate.get('token_endpoint') or '-'}."
    what = RunScope(scope).label
    if connection == SmtpSettings.FALLBACK_PK:
        what += " of the fallback connection"
    auth = AuthType(candidate["auth_type"]).label if candidate.get("auth_type") else "-"
    return (
        f"{what} started: {run_target(dict(candidate))}, "
        f"{auth}, sender {candidate.get('sender_email') or '-'}"
        + (f", client {candidate['client_id']}" if candidate.get("client_id") else "")
        + (f", test e-mail to {test_recipient}" if test_recipient else "")
        + "."
    )


def _check_guard_rails(user: AbstractBaseUser) -> None:
    # Two clicks at once must not both pass: the user's row serialises them.
    get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
    mine = ValidationRun.objects.filter(requested_by=user)
    unfinished = mine.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    if unfinished.exists():
        # A run whose worker is gone must not block the next click: end it first (beat
        # does this for everyone every 20 s; here only when one stands in the way).
        for pk in unfinished.values_list("pk", flat=True):
            validation_runs_expire_abandoned(run_id=str(pk))
    if unfinished.exists():
        raise ValidationNotStarted(
            "Your previous validation is still running; wait for its verdict before "
            "starting another."
        )
    window = timedelta(seconds=settings.SMTP_VALIDATION_WINDOW_SECONDS)
    # A tenant check only reads Microsoft's public discovery document: no sign-in to count.
    recent = list(
        mine.filter(created_at__gte=timezone.now() - window)
        .exclude(scope=RunScope.TENANT)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    if len(recent) >= settings.SMTP_VALIDATION_MAX_RUNS:
        retry_at = timezone.localtime(recent[0] + window)
        raise ValidationNotStarted(
            f"You have started {len(recent)} validations in the last "
            f"{window.seconds // 60} minutes; try again after {retry_at:%H:%M}. Each one "
            "signs in to Microsoft, and repeated failed sign-ins can get the app or an "
            "Exchange mailbox blocked for a while (550 5.2.251)."
        )


# -- running it (worker) ----------------------------------------------------------------


def validation_run_execute(*, run_id: str) -> None:
    """Run every step of a queued run; always ends it and erases its secret."""

    claimed = ValidationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    if not claimed:
        logger.info("Validation run %s is not queued; nothing to do", run_id)
        return
    progress.touch(run_id)
    run = ValidationRun.objects.select_related("requested_by").get(pk=run_id)
    outputs: dict[str, Any] = {}
    runner: Runner | None = None
    try:
        runner = Runner(run, timeout=float(settings.SMTP_NETWORK_TIMEOUT_SECONDS))
        runner.run()
        status, summary = _verdict(run, runner)
        outputs = {"outputs": runner.outputs} if runner.outputs else {}
    except Exception:
        logger.exception("Validation run %s stopped on an unexpected error", run_id)
        run.steps.filter(status__in=[StepStatus.PENDING, StepStatus.RUNNING]).update(
            status=StepStatus.SKIPPED,
            detail="Not run: the validation stopped on an internal error.",
        )
        status, summary = RunStatus.ERROR, "The validation stopped on an internal error."
    notes = " ".join(run.candidate.get("notes", []))
    ValidationRun.objects.filter(pk=run.pk).update(
        status=status,
        summary=f"{summary} {notes}" if notes else summary,
        finished_at=timezone.now(),
        candidate_secret=None,
        **outputs,
    )
    if run.candidate.get("credential_id"):
        # The credential tested explicitly: the Credentials section and its reminders say it.
        credential_check_noted(
            credential_id=int(run.candidate["credential_id"]),
            passed=status in (RunStatus.PASSED, RunStatus.WARNING),
        )
    progress.touch(run_id, final=True)
    if runner is not None:
        runner.close()


def _verdict(run: ValidationRun, runner: Runner) -> tuple[str, str]:
    outcomes = [(key, runner.ended[key]) for key in runner.keys if key in runner.ended]
    failed = [(key, o) for key, o in outcomes if o.status == StepStatus.FAILED]
    if failed:
        key, outcome = failed[0]
        cause = outcome.finding.cause if outcome.finding else ""
        return RunStatus.FAILED, f"{runner.names[key]} failed. {cause or outcome.detail}"
    warnings = [runner.names[key] for key, o in outcomes if o.status == StepStatus.WARNING]
    if warnings:
        return RunStatus.WARNING, f"Every step passed, with warnings at {', '.join(warnings)}."
    send = runner.ended.get("send")
    if run.test_recipient and send is not None and send.status == StepStatus.PASSED:
        return RunStatus.PASSED, f"Every step passed; a test message went to {run.test_recipient}."
    if not run.test_recipient and send is not None and send.status == StepStatus.SKIPPED:
        # Not "every step": whether this mailbox may really send is only shown by a send.
        return RunStatus.PASSED, (
            "Every step it ran passed; no test message was sent (Send test email to was empty)."
        )
    return RunStatus.PASSED, "Every step passed."


# -- reading runs (web) -----------------------------------------------------------------


def validation_run_as_dict(*, run: ValidationRun) -> dict[str, Any]:
    """What the page shows of a run: never its secret or a token."""
    return {
        "id": str(run.id),
        "status": run.status,
        "status_label": run.get_status_display(),
        "finished": run.is_finished,
        "summary": run.summary,
        "created_at": run.created_at.isoformat(),
        "started": run.created_at,  # for the page: shown in the console's time zone
        "requested_by": run.requested_by.get_username() if run.requested_by else "",
        "test_recipient": run.test_recipient,
        "target": run.target,
        # The fallback connection's values were tested (its page lists the run).
        "fallback": run.connection == SmtpSettings.FALLBACK_PK,
        "sender": run.candidate.get("sender_email", ""),
        "auth_type": run.candidate.get("auth_type", ""),
        "scope": run.scope,
        "outputs": run.outputs,
        # A worker takes a run within a second or so; after this long, say that none has.
        "unclaimed_seconds": (unclaimed := _unclaimed_seconds(run)),
        "unclaimed_reason": _why_no_worker_took_it() if unclaimed else "",
        "given_up_after": int(QUEUED_FOR_AT_MOST.total_seconds()),
        "steps": [
            {
                "key": step.key,
                "name": step.name,
                "status": step.status,
                "status_label": step.get_status_display(),
                "duration_ms": step.duration_ms,
                "detail": step.detail,
                "server_answer": step.server_answer,
                "facts": step.facts,
                "cause": step.cause,
                "fix": step.fix,
                "commands": step.commands,
                "diagnosis": step.diagnosis,
                # The setup assistant's script does this fix whole: the page offers it.
                "script": step.diagnosis in diagnosis.SCRIPTED,
            }
            for step in _steps_as_shown(run)
        ],
    }


UNCLAIMED_NOTICE_AFTER = timedelta(seconds=10)


def _unclaimed_seconds(run: ValidationRun) -> int:
    waited = timezone.now() - run.created_at
    if run.status != RunStatus.QUEUED or waited < UNCLAIMED_NOTICE_AFTER:
        return 0
    return int(waited.total_seconds())


def _why_no_worker_took_it() -> str:
    """The real reason a queued run waits: workers that report in are busy, or none runs."""
    now = timezone.now()
    # The worker's heartbeat comes every SEI_HEARTBEAT_SECONDS on the queue runs use.
    recent = now - timedelta(seconds=WorkerHeartbeat.stale_after())
    if not WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.WORKER, seen_at__gte=recent):
        return (
            "no worker has reported in lately. Check that the Celery worker is running "
            "(make run starts one)."
        )
    sending = Delivery.objects.filter(state=DeliveryState.SENDING, claimed_until__gte=now)
    if sending.exists():
        waiting = Delivery.objects.filter(state__in=Delivery.PENDING).count()
        return (
            f"the workers are running but busy delivering the outbox ({waiting} messages "
            "waiting) and none has come free. Every worker process may be busy: start more "
            "workers, or a worker for the runs' queue alone (-Q "
            f"{settings.SEI_INTERACTIVE_QUEUE})."
        )
    return (
        "the workers report in but none has taken it: they may be busy with long tasks, or "
        f"started without the runs' queue ({settings.SEI_INTERACTIVE_QUEUE}); a worker "
        "started with -Q must list it."
    )


def _steps_as_shown(run: ValidationRun) -> list[ValidationStep]:
    """The worker writes a step only when it ends; while a run runs, the first step still
    waiting is the one under way."""
    steps = list(run.steps.all())
    if run.status == RunStatus.RUNNING:
        for step in steps:
            if step.status == StepStatus.PENDING:
                step.status = StepStatus.RUNNING
                break
    return steps


KEEP_AT_LEAST = 50


def validation_runs_purge() -> int:
    """Runs (and their steps) older than SMTP_VALIDATION_RETENTION_DAYS go; the latest 50
    always stay, so the history never empties."""
    cutoff = timezone.now() - timedelta(days=settings.SMTP_VALIDATION_RETENTION_DAYS)
    kept = ValidationRun.objects.order_by("-created_at").values_list("pk", flat=True)[
        :KEEP_AT_LEAST
    ]
    old = ValidationRun.objects.filter(created_at__lt=cutoff).exclude(pk__in=list(kept))
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:1000]):
        deleted += (
            ValidationRun.objects.filter(pk__in=ids)
            .delete()[1]
            .get("smtp_settings.ValidationRun", 0)
        )
    return deleted


def validation_recent_runs(
    *, limit: int = 10, connection: int = SmtpSettings.SINGLETON_PK
) -> list[ValidationRun]:
    """Validate's runs of one connection's values (``connection``: its settings row's
    primary key; the setup assistant's part checks are shown on its own page). Runs
    abandoned by their worker end first: beat's sweep does it too, but beat may be what is
    gone (under make run it is a thread of the worker), and the list must not say Queued."""
    recent = ValidationRun.objects.filter(scope=RunScope.FULL, connection=connection)
    recent = recent.select_related("requested_by")
    runs = list(recent[:limit])
    unfinished = any(run.status in (RunStatus.QUEUED, RunStatus.RUNNING) for run in runs)
    if unfinished and validation_runs_expire_abandoned():
        runs = list(recent[:limit])
    return runs
