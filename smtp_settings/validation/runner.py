"""The seven steps of Validate, each recorded in its row as it ends.

A run's scope picks which steps run: all of them (Validate), only the tenant's
discovery, or only the token (the setup assistant checks one Microsoft step at a time
with the same steps and diagnosis).

A step is a ``with self.step(key) as outcome:`` block: the block fills in the
outcome; a token or SMTP failure inside it ends the step as failed, with the
diagnosis, and skips the steps after it.

One UPDATE per step and nothing when a step starts: the step running is the first
one still waiting (the page shows it so), and a step's end time is the run's heartbeat.
The UPDATEs are made by a thread of the run's while the next step goes on (``step_writer``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone

from smtp_settings import diagnosis
from smtp_settings.credentials.model import Credential
from smtp_settings.mail import endpoint, jwt_claims, microsoft, oauth
from smtp_settings.mail.transport import SmtpConnection, SmtpFailure, TlsInfo
from smtp_settings.models import (
    AuthType,
    RunScope,
    StepStatus,
    ValidationRun,
    readable_secret,
)
from smtp_settings.validation import graph_steps, token_check
from smtp_settings.validation.early_session import EarlySession
from smtp_settings.validation.outcome import Outcome
from smtp_settings.validation.step_writer import StepWriter

STEPS: tuple[tuple[str, str], ...] = (
    ("token", "Token"),
    ("token_contents", "Token contents"),
    ("connect", "Connect"),
    ("tls", "TLS"),
    ("authenticate", "Authenticate"),
    ("sender", "Sender accepted"),
    ("send", "Test send"),
)
TENANT_STEP = ("tenant", "Tenant")
# One step per further mailbox a run signs in as: "mailbox_0", "mailbox_1", ...
MAILBOX_STEP_PREFIX = "mailbox_"


def mailbox_steps(mailboxes: list[str]) -> list[tuple[str, str]]:
    return [
        (f"{MAILBOX_STEP_PREFIX}{index}", f"Mailbox {address}"[:60])
        for index, address in enumerate(mailboxes)
    ]


STEPS_BY_SCOPE: dict[str, tuple[tuple[str, str], ...]] = {
    RunScope.FULL: STEPS,
    RunScope.TENANT: (TENANT_STEP,),
    RunScope.TOKEN: STEPS[:2],
}


def steps_for(
    scope: str, mailboxes: list[str], transport: str = endpoint.SMTP
) -> list[tuple[str, str]]:
    """A run's steps in order: its scope's, then one per further mailbox (full SMTP runs);
    a full run through Microsoft Graph has Graph's own."""
    if scope == RunScope.FULL and transport == endpoint.GRAPH:
        return list(graph_steps.GRAPH_STEPS)
    extra = mailbox_steps(mailboxes) if scope == RunScope.FULL else []
    return [*STEPS_BY_SCOPE[scope], *extra]


class _Stopped(Exception):
    """A step failed: the run stops there (its row and the skipped ones are written)."""


class _StepRows:
    """A run's step rows, each written once as it ends (and the waiting pages told)."""

    def __init__(self, run: ValidationRun, keys: list[str]) -> None:
        self.run_row = run
        self.keys = keys
        # How each step ended, for the verdict without reading the rows back.
        self.ended: dict[str, Outcome] = {}
        self.writer = StepWriter(run.pk)

    def _write(self, keys: list[str], **columns: Any) -> None:
        self.writer.write(keys, {"ended_at": timezone.now(), **columns})

    def finish(self, key: str, started: float, outcome: Outcome) -> None:

        self.ended[key] = outcome
        finding = outcome.finding
        self._write(
            [key],
            status=outcome.status,
            duration_ms=round(
                (outcome.seconds if outcome.seconds is not None else time.monotonic() - started)
                * 1000
            ),
            detail=outcome.detail,
            server_answer=outcome.answer,
            facts=outcome.facts,
            cause=finding.cause if finding else "",
            fix=finding.fix if finding else "",
            commands=finding.commands if finding else [],
            diagnosis=finding.key if finding else "",
        )

    def skip(self, keys: list[str], reason: str) -> None:
        if not keys:
            return
        for key in keys:
            self.ended[key] = Outcome(StepStatus.SKIPPED, reason)
        self._write(keys, status=StepStatus.SKIPPED, detail=reason)

    def skip_after(self, key: str, reason: str) -> None:
        self.skip(self.keys[self.keys.index(key) + 1 :], reason)


def _credential_under_test(run: ValidationRun) -> oauth.Credential:
    """The secret entered for the run, or the stored certificate it names (read here, in the
    worker: its key is never in the run's row), while still bound to the values tested."""
    if run.candidate.get("certificate_pem"):
        return {
            "private_key": readable_secret(run.candidate_secret),
            "public_certificate": str(run.candidate["certificate_pem"]),
        }
    credential_id = run.candidate.get("credential_id")
    if not credential_id or run.candidate_secret:
        return readable_secret(run.candidate_secret)
    credential = Credential.objects.filter(pk=credential_id).first()
    if credential is None or credential.moved_by(run.candidate):
        return ""
    return credential.engine_credential()


class Runner:
    def __init__(self, run: ValidationRun, *, timeout: float) -> None:
        self.run_row = run
        self.mail = endpoint.MailSettings.from_values(
            run.candidate,
            secret=_credential_under_test(run),
            credential_name=str(run.candidate.get("credential", "")),
        )
        self.timeout = timeout
        self.token: oauth.Token | None = None
        self.connection: SmtpConnection | None = None
        self.early: EarlySession | None = None
        # The run's own SMTP session (``connection`` is the one in use, a mailbox's too).
        self.session: SmtpConnection | None = None
        self.fill = diagnosis.values_for(self.mail)
        # What the token step established, for the diagnosis of later steps.
        self.evidence = diagnosis.NO_EVIDENCE
        self.scope = run.scope or RunScope.FULL
        # More mailboxes to sign in as (the setup assistant, Use sender email off).
        self.mailboxes = [str(address) for address in run.candidate.get("mailboxes") or []]
        # The run's steps, in order, as validation_run_start created their rows.
        self.names = dict(steps_for(self.scope, self.mailboxes, self.mail.transport))
        self.keys = list(self.names)
        # What later setup steps carry on with; written with the run's verdict.
        self.outputs: dict[str, Any] = {}
        self.rows = _StepRows(run, self.keys)
        self.ended = self.rows.ended

    def _diagnose(self, step: str, **kwargs: Any) -> diagnosis.Finding | None:
        known = {"auth_type": self.mail.auth_type, "values": self.fill, "evidence": self.evidence}
        return diagnosis.diagnose(step, **known, **kwargs)

    @contextmanager
    def step(self, key: str) -> Iterator[Outcome]:
        started = time.monotonic()
        outcome = Outcome()
        try:
            yield outcome
        except oauth.TokenError as error:
            self.rows.finish(key, started, self._token_failure(key, error))
            self.rows.skip_after(key, "Skipped: no token was issued.")
            raise _Stopped from None
        except SmtpFailure as failure:
            # TLS trouble can surface later in the session; it is the TLS step's failure.
            # A mailbox's own check keeps its row, whichever stage of its session failed.
            if not key.startswith(MAILBOX_STEP_PREFIX):
                key = failure.stage
            self.rows.finish(key, started, self._smtp_failure(failure, key))
            self.rows.skip_after(key, f"Skipped: {self.names[key]} failed.")
            raise _Stopped from None
        self.rows.finish(key, started, outcome)

    # -- the steps ----------------------------------------------------------------

    def run(self) -> None:
        try:
            if self.scope == RunScope.TENANT:
                with self.step("tenant") as outcome:
                    _tenant(self, outcome)
                return
            if self.mail.transport == endpoint.GRAPH:  # Graph's token (and test send)
                graph_steps.run_graph(self, build_test_message)
                return
            if self.scope == RunScope.TOKEN:
                with self.step("token") as outcome:
                    self._token(outcome)
                with self.step("token_contents") as outcome:
                    self._token_contents(outcome)
                return
            self.connection = self.session = SmtpConnection(
                endpoint.smtp_endpoint(self.mail, timeout=self.timeout)
            )
            if self.mail.auth_type == AuthType.OAUTH2:
                # Connect and TLS need nothing of the token: they go on while it is asked for.
                self.early = EarlySession(self.session)
                with self.step("token") as outcome:
                    self._token(outcome)
                with self.step("token_contents") as outcome:
                    self._token_contents(outcome)
            else:
                reason = f"Skipped: {AuthType(self.mail.auth_type).label} does not use a token."
                self.rows.skip(["token", "token_contents"], reason)
            self._smtp_steps(self.session)
            if self.mailboxes:  # one session at a time: servers limit them per mailbox
                self.close()
            for index, address in enumerate(self.mailboxes):
                with self.step(f"{MAILBOX_STEP_PREFIX}{index}") as outcome:
                    self._mailbox(outcome, address)
        except _Stopped:
            pass
        finally:
            if self.early is not None:  # a token that failed leaves it under way
                self.early.abandon()
            # Every step's row before the verdict.
            self.rows.writer.close()

    def close(self) -> None:
        """Ends the run's SMTP session, after the verdict: QUIT's answer is not part of it."""
        if self.session is not None:
            self.session, session = None, self.session
            session.close()

    def _mailbox(self, outcome: Outcome, address: str) -> None:
        """Sign in as one more mailbox and have it accepted as sender, on its own session."""
        self.fill["sender"] = address  # the fix's commands name this mailbox
        self.connection = SmtpConnection(endpoint.smtp_endpoint(self.mail, timeout=self.timeout))
        try:
            self.connection.connect()
            self.connection.secure()
            credentials = endpoint.credentials(self.mail, mailbox=address, token=self.token)
            answer = self.connection.authenticate(credentials) if credentials else ""
            mail_answer, rcpt_answer = self.connection.check_sender(address, address)
        finally:
            self.connection.close()
        outcome.detail = f"AUTH XOAUTH2 as {address} succeeded, and it is accepted as sender."
        outcome.answer = f"{answer}\nMAIL FROM: {mail_answer}\nRCPT TO: {rcpt_answer}".strip()

    def _token(self, outcome: Outcome) -> None:
        self.token = endpoint.acquire_token(self.mail, timeout=self.timeout, fresh=True)
        outcome.detail = (
            f"Entra ID issued a token, valid for {self.token.expires_in // 60} minutes."
        )
        authority = oauth.authority_from_token_endpoint(self.mail.token_endpoint)
        outcome.facts = [["Authority", authority]]

    def _token_failure(self, key: str, error: oauth.TokenError) -> Outcome:
        return Outcome(
            StepStatus.FAILED,
            "Entra ID did not issue a token.",
            answer=error.message,
            facts=_token_error_facts(error),
            finding=self._diagnose(
                key,
                kind=token_check.token_error_kind(error, secret=self.mail.secret),
                codes=error.error_codes,
                answer=error.message,
            ),
        )

    def _token_contents(self, outcome: Outcome) -> None:
        assert self.token is not None
        claims = jwt_claims.read_claims(self.token.access_token)
        if claims is None:
            outcome.detail = "Could not read the token (not a JWT); nothing checked."
            return
        self.fill = diagnosis.values_for(self.mail, claims=claims)
        if "sp_object_id" in self.fill:
            self.outputs["sp_object_id"] = self.fill["sp_object_id"]
        self.evidence = diagnosis.Evidence.from_claims(claims)
        outcome.facts = token_check.claim_facts(claims)
        problems = token_check.claim_problems(claims, self.mail)
        # Only the setup assistant asks: a second token, for Microsoft Graph, tells whether
        # Mail.Send was added there instead of SMTP.SendAsApp.
        if (
            problems
            and problems[0][0] == "no_role"
            and self.scope == RunScope.TOKEN
            and token_check.has_graph_mail_send(self.mail, timeout=self.timeout)
        ):
            problems[0] = ("graph_mail_send", token_check.GRAPH_MAIL_SEND_TEXT)
        if problems:
            # Validate goes on to show what Exchange says; a token check has nothing after.
            outcome.status = (
                StepStatus.FAILED if self.scope == RunScope.TOKEN else StepStatus.WARNING
            )
            outcome.detail = " ".join(text for _, text in problems)
            outcome.finding = self._diagnose("token_contents", kind=problems[0][0])
            return
        outcome.detail = (
            f"Issued for Exchange Online to this app, with the {microsoft.SEND_AS_APP_ROLE} role."
        )

    def _smtp_steps(self, connection: SmtpConnection) -> None:
        sender = self.mail.sender_email
        with self.step("connect") as outcome:
            if self.early is not None:
                address, outcome.seconds = self.early.result("connect")
            else:
                address = connection.connect()
            outcome.detail = f"Connected to {self.mail.smtp_server} ({address})."
            outcome.answer = connection.greeting
        with self.step("tls") as outcome:
            if self.early is not None:
                info, outcome.seconds = self.early.result("tls")
            else:
                info = connection.secure()
            self._tls(outcome, info, connection)
        with self.step("authenticate") as outcome:
            self._authenticate(outcome, connection)
        recipient = self.run_row.test_recipient
        with self.step("sender") as outcome:
            mail_answer, rcpt_answer = connection.check_sender(sender, recipient or sender)
            outcome.detail = f"The server accepts mail from {sender} to {recipient or sender}."
            outcome.answer = f"MAIL FROM: {mail_answer}\nRCPT TO: {rcpt_answer}"
        if not recipient:
            self.rows.skip(["send"], "Skipped: no address in Send test email to.")
            return
        with self.step("send") as outcome:
            outcome.answer = connection.send(
                sender=sender,
                recipients=[recipient],
                message=build_test_message(self.run_row, self.mail),
            )
            outcome.detail = f"The server queued a test message for {recipient}."

    def _smtp_failure(self, failure: SmtpFailure, key: str) -> Outcome:
        return Outcome(
            StepStatus.FAILED,
            failure.message,
            answer=failure.answer,
            facts=(
                [["Offered mechanisms", " ".join(self.connection.mechanisms) or "none"]]
                if failure.stage == "authenticate" and self.connection
                else []
            ),
            finding=self._diagnose(failure.stage, kind=failure.kind, answer=failure.answer),
            seconds=self.early.seconds(key) if self.early is not None else None,
        )

    def _tls(self, outcome: Outcome, info: TlsInfo | None, connection: SmtpConnection) -> None:
        if info is None:
            outcome.status = StepStatus.WARNING
            outcome.detail = "Use SSL/TLS is off: the connection is not encrypted."
            outcome.finding = self._diagnose("tls", kind="plaintext")
            return
        outcome.detail = f"{info.mode}, {info.version}; the certificate was verified."
        outcome.answer = connection.greeting if connection.endpoint.implicit_tls else ""
        outcome.facts = [
            ["Version", info.version],
            ["Cipher", info.cipher],
            ["Certificate subject", info.subject],
            ["Issuer", info.issuer],
            ["Certificate expires", info.not_after],
        ]

    def _authenticate(self, outcome: Outcome, connection: SmtpConnection) -> None:
        outcome.facts = [["Offered mechanisms", " ".join(connection.mechanisms) or "none"]]
        credentials = endpoint.credentials(
            self.mail, mailbox=self.mail.sender_email, token=self.token
        )
        if credentials is None:
            outcome.detail = "No authentication configured."
            return
        outcome.answer = connection.authenticate(credentials)
        how = (
            f"AUTH XOAUTH2 as {credentials.username}"
            if credentials.kind == endpoint.OAUTH2
            else f"AUTH as {credentials.username}"
        )
        outcome.detail = f"{how} succeeded."


def _tenant(run: Runner, outcome: Outcome) -> None:
    """The tenant step (the setup assistant's first check): the tenant's ID and cloud."""
    authority = oauth.authority_from_token_endpoint(run.mail.token_endpoint)
    found = oauth.discover_tenant(authority=authority, timeout=run.timeout)
    parts = urlsplit(authority)
    host = parts.netloc
    detail = f"The tenant exists: its Directory (tenant) ID is {found.tenant_id}."
    # Entra answers discovery for a tenant of any Microsoft cloud on any of its hosts;
    # tokens, though, come from the tenant's own cloud.
    own_host = microsoft.login_host_for_instance(found.cloud_instance)
    if (parts.hostname or "") in microsoft.LOGIN_HOSTS and own_host not in ("", parts.hostname):
        host = own_host
        detail += f" It belongs to the cloud signed in at {own_host}, used from now on."
    token_endpoint = microsoft.token_endpoint(host, found.tenant_id)
    run.outputs.update(tenant_id=found.tenant_id, token_endpoint=token_endpoint)
    outcome.detail = detail
    outcome.facts = [
        ["Directory (tenant) ID", found.tenant_id],
        ["Token Endpoint", token_endpoint],
    ]
    cloud = microsoft.cloud_for_login_host(host.partition(":")[0])
    if cloud is not None:
        outcome.facts.append(["Cloud", cloud.name])
    else:
        # Not Microsoft's: whatever its discovery says, the host is the operator's.
        outcome.facts.append(["Sign-in host", f"{host} (allowed by the operator)"])


def build_test_message(run: ValidationRun, mail: endpoint.MailSettings) -> EmailMessage:
    """The message Test send sends: it says who asked for it and through which server."""
    sender = mail.sender_email
    who = run.requested_by.get_username() if run.requested_by else "an administrator"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = run.test_recipient
    message["Subject"] = f"SEI Administration test message (validation {str(run.id)[:8]})"
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(
        f"This message comes from the Validate button of SEI Administration > Manage SMTP "
        f"(validation {run.id}, started by {who}).\n\n"
        f"It shows that the console can send through {_way_out(mail)} as {sender}. No "
        "reply is needed.\n"
    )
    return message


def _way_out(mail: endpoint.MailSettings) -> str:
    if mail.transport == endpoint.GRAPH:
        return "Microsoft Graph"
    return f"{mail.smtp_server}:{mail.port}"


def _token_error_facts(error: oauth.TokenError) -> list[list[str]]:
    """What Entra said, for the page and for Microsoft's support."""
    facts = [["Entra error", error.error]] if error.error else []
    if error.error_codes:
        facts.append(["Error codes", ", ".join(str(c) for c in error.error_codes)])
    if error.correlation_id:
        facts.append(["Correlation ID", error.correlation_id])
    if error.trace_id:
        facts.append(["Trace ID", error.trace_id])
    return facts
