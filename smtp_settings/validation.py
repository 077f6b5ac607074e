"""Validate: prove unsaved settings end to end, step by step, recording each step as it ends.

``validation_run_start`` (web) stores the run and enqueues it by id;
``validation_run_execute`` (worker) runs the steps with the same transport that
sends real mail, and erases the secret under test when it is done.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from smtp_settings import diagnosis, jwt_claims, oauth, validators
from smtp_settings.forms import SmtpSettingsForm
from smtp_settings.models import (
    EXCHANGE_ONLINE_SCOPE,
    AuthType,
    RunStatus,
    SmtpSettings,
    StepStatus,
    ValidationRun,
    ValidationStep,
)
from smtp_settings.transport import Credentials, SmtpConnection, SmtpEndpoint, SmtpFailure

logger = logging.getLogger(__name__)

STEPS: tuple[tuple[str, str], ...] = (
    ("token", "Token"),
    ("token_contents", "Token contents"),
    ("connect", "Connect"),
    ("tls", "TLS"),
    ("authenticate", "Authenticate"),
    ("sender", "Sender accepted"),
    ("send", "Test send"),
)
STEP_NAMES = dict(STEPS)
SEND_AS_APP_ROLE = "SMTP.SendAsApp"
EXCHANGE_RESOURCE = EXCHANGE_ONLINE_SCOPE.removesuffix("/.default")
# Exchange Online's application id: tokens may name it instead of its URL as audience.
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
CANDIDATE_FIELDS = (
    "smtp_server",
    "sender_email",
    "port",
    "auth_type",
    "client_id",
    "token_endpoint",
    "scopes",
    "username",
    "use_ssl_tls",
    "use_sender_email",
)


class ValidationNotStarted(Exception):
    """A guard rail refused to start a run; the message says why and when to retry."""


# -- starting a run (web process) -------------------------------------------------------


@transaction.atomic
def validation_run_start(
    *, form: SmtpSettingsForm, user: AbstractBaseUser, test_recipient: str = ""
) -> ValidationRun:
    """Record a run for a valid form's values and enqueue it once the row is committed."""
    if not form.is_valid():
        raise ValueError("validation_run_start needs a valid form")
    validation_runs_expire_abandoned()
    _check_guard_rails(user)
    data = form.cleaned_data
    stored = SmtpSettings.load()
    candidate = {name: data.get(name, getattr(stored, name)) for name in CANDIDATE_FIELDS}
    auth_type = candidate["auth_type"]
    secret_field = {AuthType.OAUTH2: "client_secret", AuthType.BASIC: "password"}.get(auth_type)
    secret = ""
    if secret_field:
        # A blank secret field means "the stored one", exactly as Save treats it.
        secret = data.get(secret_field) or getattr(stored, secret_field) or ""
        candidate["secret_source"] = "entered" if data.get(secret_field) else "stored"
    run = ValidationRun.objects.create(
        requested_by=user,
        candidate=candidate,
        candidate_secret=secret or None,
        test_recipient=test_recipient,
    )
    ValidationStep.objects.bulk_create(
        ValidationStep(run=run, position=position, key=key, name=name)
        for position, (key, name) in enumerate(STEPS)
    )
    from smtp_settings import tasks  # tasks import this module

    run_id = str(run.id)
    transaction.on_commit(lambda: tasks.validate_smtp_settings.delay(run_id))
    return run


def _stale_after() -> timedelta:
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def validation_runs_expire_abandoned() -> int:
    """Runs that no worker finished in time end as errors and lose their secret."""
    cutoff = timezone.now() - _stale_after()
    return ValidationRun.objects.filter(
        status__in=[RunStatus.QUEUED, RunStatus.RUNNING], created_at__lt=cutoff
    ).update(
        status=RunStatus.ERROR,
        finished_at=timezone.now(),
        candidate_secret=None,
        summary="No worker finished this run. Check that the Celery worker is running.",
    )


def _check_guard_rails(user: AbstractBaseUser) -> None:
    # Two clicks at once must not both pass: the user's row serialises them.
    get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
    mine = ValidationRun.objects.filter(requested_by=user)
    if mine.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
        raise ValidationNotStarted(
            "Your previous validation is still running; wait for its verdict before "
            "starting another."
        )
    window = timedelta(seconds=settings.SMTP_VALIDATION_WINDOW_SECONDS)
    recent = list(
        mine.filter(created_at__gte=timezone.now() - window)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    if len(recent) >= settings.SMTP_VALIDATION_MAX_RUNS:
        retry_at = timezone.localtime(recent[0] + window)
        raise ValidationNotStarted(
            f"You have started {len(recent)} validations in the last "
            f"{window.seconds // 60} minutes; try again after {retry_at:%H:%M}. Repeated "
            "failed sign-ins can get an Exchange mailbox blocked for a while (550 5.2.251)."
        )


# -- running it (worker) ----------------------------------------------------------------


def validation_run_execute(*, run_id: str) -> None:
    """Run every step of a queued run; always ends it and erases its secret."""
    claimed = ValidationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        logger.info("Validation run %s is not queued; nothing to do", run_id)
        return
    run = ValidationRun.objects.get(pk=run_id)
    try:
        _Runner(run).run()
        status, summary = _verdict(run)
    except Exception:
        logger.exception("Validation run %s stopped on an unexpected error", run_id)
        run.steps.filter(status__in=[StepStatus.PENDING, StepStatus.RUNNING]).update(
            status=StepStatus.SKIPPED,
            detail="Not run: the validation stopped on an internal error.",
        )
        status, summary = RunStatus.ERROR, "The validation stopped on an internal error."
    ValidationRun.objects.filter(pk=run.pk).update(
        status=status, summary=summary, finished_at=timezone.now(), candidate_secret=None
    )


def _verdict(run: ValidationRun) -> tuple[str, str]:
    steps = list(run.steps.all())
    failed = [step for step in steps if step.status == StepStatus.FAILED]
    if failed:
        step = failed[0]
        return RunStatus.FAILED, f"{step.name} failed. {step.cause or step.detail}"
    warnings = [step for step in steps if step.status == StepStatus.WARNING]
    if warnings:
        names = ", ".join(step.name for step in warnings)
        return RunStatus.WARNING, f"Every step passed, with warnings at {names}."
    sent = run.test_recipient and any(s.key == "send" and s.status == "passed" for s in steps)
    return RunStatus.PASSED, (
        f"Every step passed; a test message went to {run.test_recipient}."
        if sent
        else "Every step passed."
    )


@dataclass
class _Outcome:
    status: str
    detail: str
    answer: str = ""
    facts: list[list[str]] | None = None
    finding: diagnosis.Finding | None = None


class _Runner:
    def __init__(self, run: ValidationRun) -> None:
        self.run_row = run
        self.values: dict[str, Any] = run.candidate
        self.secret = run.candidate_secret or ""
        self.timeout = float(settings.SMTP_NETWORK_TIMEOUT_SECONDS)
        self.sender: str = self.values["sender_email"]
        self.auth_type: str = self.values["auth_type"]
        self.token: oauth.Token | None = None
        tenant = validators.tenant_from_token_endpoint(self.values.get("token_endpoint") or "")
        self.fill = {
            "tenant_id": tenant or "",
            "tenant_hint": tenant if tenant and validators.is_guid(tenant) else "",
            "client_id": self.values.get("client_id") or "",
            "sender": self.sender,
            "server": self.values["smtp_server"],
            "port": str(self.values["port"]),
        }
        self.steps = {step.key: step for step in run.steps.all()}

    # -- recording ----------------------------------------------------------------

    def _begin(self, key: str) -> float:
        ValidationStep.objects.filter(pk=self.steps[key].pk).update(status=StepStatus.RUNNING)
        return time.monotonic()

    def _end(self, key: str, started: float, outcome: _Outcome) -> None:
        finding = outcome.finding
        ValidationStep.objects.filter(pk=self.steps[key].pk).update(
            status=outcome.status,
            duration_ms=round((time.monotonic() - started) * 1000),
            detail=outcome.detail,
            server_answer=outcome.answer,
            facts=outcome.facts or [],
            cause=finding.cause if finding else "",
            fix=finding.fix if finding else "",
            commands=finding.commands if finding else [],
            diagnosis=finding.key if finding else "",
        )

    def _skip(self, key: str, reason: str) -> None:
        ValidationStep.objects.filter(pk=self.steps[key].pk).update(
            status=StepStatus.SKIPPED, detail=reason
        )

    def _skip_after(self, key: str, reason: str) -> None:
        keys = [k for k, _ in STEPS]
        for later in keys[keys.index(key) + 1 :]:
            self._skip(later, reason)

    def _diagnose(self, step: str, **kwargs: Any) -> diagnosis.Finding | None:
        return diagnosis.diagnose(step, auth_type=self.auth_type, values=self.fill, **kwargs)

    # -- the steps ----------------------------------------------------------------

    def run(self) -> None:
        if self.auth_type == AuthType.OAUTH2:
            if not self._token_step():
                self._skip_after("token", "Skipped: no token was issued.")
                return
            self._token_contents_step()
        else:
            label = AuthType(self.auth_type).label
            self._skip("token", f"Skipped: {label} does not use a token.")
            self._skip("token_contents", f"Skipped: {label} does not use a token.")
        connection = SmtpConnection(
            SmtpEndpoint.configured(
                host=self.values["smtp_server"],
                port=int(self.values["port"]),
                use_tls=bool(self.values["use_ssl_tls"]),
                timeout=self.timeout,
            )
        )
        try:
            self._smtp_steps(connection)
        finally:
            connection.close()

    def _token_step(self) -> bool:
        started = self._begin("token")
        try:
            self.token = oauth.acquire_token(
                token_endpoint=self.values["token_endpoint"],
                client_id=self.values["client_id"],
                client_secret=self.secret,
                scopes=validators.split_scopes(self.values["scopes"]),
                timeout=self.timeout,
                fresh=True,
            )
        except oauth.TokenError as error:
            facts = [["Entra error", error.error]] if error.error else []
            if error.error_codes:
                facts.append(["Error codes", ", ".join(str(c) for c in error.error_codes)])
            if error.correlation_id:
                facts.append(["Correlation ID", error.correlation_id])
            if error.trace_id:
                facts.append(["Trace ID", error.trace_id])
            finding = self._diagnose("token", kind=error.kind, codes=error.error_codes)
            self._end(
                "token",
                started,
                _Outcome(
                    StepStatus.FAILED,
                    "Entra ID did not issue a token.",
                    answer=error.message,
                    facts=facts,
                    finding=finding,
                ),
            )
            return False
        self._end(
            "token",
            started,
            _Outcome(
                StepStatus.PASSED,
                f"Entra ID issued a token, valid for {self.token.expires_in // 60} minutes.",
                facts=[
                    [
                        "Authority",
                        oauth.authority_from_token_endpoint(self.values["token_endpoint"]),
                    ]
                ],
            ),
        )
        return True

    def _token_contents_step(self) -> None:
        started = self._begin("token_contents")
        assert self.token is not None
        claims = jwt_claims.read_claims(self.token.access_token)
        if claims is None:
            self._end(
                "token_contents",
                started,
                _Outcome(
                    StepStatus.PASSED, "Could not read the token (not a JWT); nothing checked."
                ),
            )
            return
        if claims.get("oid"):
            self.fill["sp_object_id"] = str(claims["oid"])
        roles = [str(role) for role in claims.get("roles") or []]
        expires = claims.get("exp")
        facts = [
            ["Audience", str(claims.get("aud", ""))],
            ["Roles", ", ".join(roles) or "(none)"],
            ["Tenant", str(claims.get("tid", ""))],
            ["Application", str(claims.get("appid") or claims.get("azp") or "")],
            ["Service principal object ID", str(claims.get("oid", ""))],
        ]
        if isinstance(expires, int | float):
            facts.append(["Expires", datetime.fromtimestamp(expires, tz=UTC).isoformat()])
        problems = self._claim_problems(claims, roles)
        if problems:
            kind, _ = problems[0]
            self._end(
                "token_contents",
                started,
                _Outcome(
                    StepStatus.WARNING,
                    " ".join(text for _, text in problems),
                    facts=facts,
                    finding=self._diagnose("token_contents", kind=kind),
                ),
            )
            return
        self._end(
            "token_contents",
            started,
            _Outcome(
                StepStatus.PASSED,
                f"Issued for Exchange Online to this app, with the {SEND_AS_APP_ROLE} role.",
                facts=facts,
            ),
        )

    def _claim_problems(self, claims: dict[str, Any], roles: list[str]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        # Exchange accepts only tokens issued for itself, whatever the scope asked for.
        audience = str(claims.get("aud", "")).rstrip("/")
        if audience and audience not in (EXCHANGE_RESOURCE, EXCHANGE_APP_ID):
            problems.append(
                ("wrong_audience", f"The token is for {audience}, not for {EXCHANGE_RESOURCE}.")
            )
        if SEND_AS_APP_ROLE not in roles:
            extra = (
                " It has Mail.Send, a Microsoft Graph permission SMTP does not use."
                if ("Mail.Send" in roles)
                else ""
            )
            problems.append(("no_role", f"The token has no {SEND_AS_APP_ROLE} role.{extra}"))
        tenant = self.fill["tenant_id"]
        if validators.is_guid(tenant) and claims.get("tid") and claims["tid"] != tenant:
            problems.append(("wrong_tenant", f"The token comes from tenant {claims['tid']}."))
        app = claims.get("appid") or claims.get("azp")
        if app and str(app).lower() != str(self.values["client_id"]).lower():
            problems.append(("wrong_app", f"The token was issued to application {app}."))
        return problems

    def _smtp_steps(self, connection: SmtpConnection) -> None:
        step = "connect"
        started = self._begin(step)
        try:
            address = connection.connect()
            self._end(
                step,
                started,
                _Outcome(
                    StepStatus.PASSED,
                    f"Connected to {self.values['smtp_server']} ({address}).",
                    answer=connection.greeting,
                ),
            )
            step = "tls"
            started = self._begin(step)
            self._end(step, started, self._tls_outcome(connection.secure(), connection))
            step = "authenticate"
            started = self._begin(step)
            self._end(step, started, self._authenticate(connection))
            step = "sender"
            started = self._begin(step)
            recipient = self.run_row.test_recipient or self.sender
            mail_answer, rcpt_answer = connection.check_sender(self.sender, recipient)
            self._end(
                step,
                started,
                _Outcome(
                    StepStatus.PASSED,
                    f"The server accepts mail from {self.sender} to {recipient}.",
                    answer=f"MAIL FROM: {mail_answer}\nRCPT TO: {rcpt_answer}",
                ),
            )
            step = "send"
            if not self.run_row.test_recipient:
                self._skip(step, "Skipped: no address in Send test email to.")
                return
            started = self._begin(step)
            answer = connection.send(
                sender=self.sender,
                recipients=[self.run_row.test_recipient],
                message=self._test_message(),
            )
            self._end(
                step,
                started,
                _Outcome(
                    StepStatus.PASSED,
                    f"The server queued a test message for {self.run_row.test_recipient}.",
                    answer=answer,
                ),
            )
        except SmtpFailure as failure:
            failed_step = failure.stage
            finding = self._diagnose(failed_step, kind=failure.kind, answer=failure.answer)
            facts = (
                [["Offered mechanisms", " ".join(connection.mechanisms) or "none"]]
                if failed_step == "authenticate"
                else None
            )
            self._end(
                failed_step,
                started,
                _Outcome(
                    StepStatus.FAILED,
                    failure.message,
                    answer=failure.answer,
                    facts=facts,
                    finding=finding,
                ),
            )
            self._skip_after(failed_step, f"Skipped: {STEP_NAMES[failed_step]} failed.")

    def _tls_outcome(self, info: Any, connection: SmtpConnection) -> _Outcome:
        if info is None:
            return _Outcome(
                StepStatus.WARNING,
                "Use SSL/TLS is off: the connection is not encrypted.",
                finding=self._diagnose("tls", kind="plaintext"),
            )
        return _Outcome(
            StepStatus.PASSED,
            f"{info.mode}, {info.version}; the certificate was verified.",
            answer=connection.greeting if connection.endpoint.implicit_tls else "",
            facts=[
                ["Version", info.version],
                ["Cipher", info.cipher],
                ["Certificate subject", info.subject],
                ["Issuer", info.issuer],
                ["Certificate expires", info.not_after],
            ],
        )

    def _authenticate(self, connection: SmtpConnection) -> _Outcome:
        facts = [["Offered mechanisms", " ".join(connection.mechanisms) or "none"]]
        if self.auth_type == AuthType.OAUTH2:
            assert self.token is not None
            credentials = Credentials("oauth2", self.sender, self.token.access_token)
            how = f"AUTH XOAUTH2 as {self.sender}"
        elif self.auth_type == AuthType.BASIC:
            credentials = Credentials("basic", self.values["username"], self.secret)
            how = f"AUTH as {self.values['username']}"
        else:
            return _Outcome(StepStatus.PASSED, "No authentication configured.", facts=facts)
        answer = connection.authenticate(credentials)
        return _Outcome(StepStatus.PASSED, f"{how} succeeded.", answer=answer, facts=facts)

    def _test_message(self) -> EmailMessage:
        run = self.run_row
        who = run.requested_by.get_username() if run.requested_by else "an administrator"
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = run.test_recipient
        message["Subject"] = f"SEI Administration test message (validation {str(run.id)[:8]})"
        message["Date"] = format_datetime(timezone.now())
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        message.set_content(
            f"This message comes from the Validate button of SEI Administration > Manage SMTP "
            f"(validation {run.id}, started by {who}).\n\n"
            f"It shows that the console can send through {self.values['smtp_server']}:"
            f"{self.values['port']} as {self.sender}. No reply is needed.\n"
        )
        return message


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
        "requested_by": run.requested_by.get_username() if run.requested_by else "",
        "test_recipient": run.test_recipient,
        "target": f"{run.candidate.get('smtp_server')}:{run.candidate.get('port')}",
        "sender": run.candidate.get("sender_email", ""),
        "auth_type": run.candidate.get("auth_type", ""),
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
            }
            for step in run.steps.all()
        ],
    }


def validation_recent_runs(*, limit: int = 10) -> list[ValidationRun]:
    return list(ValidationRun.objects.select_related("requested_by")[:limit])
