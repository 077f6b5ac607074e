"""Validate's steps for Send through: Microsoft Graph (issue 20).

Token (Graph's, per cloud), token contents (audience Graph, role Mail.Send, tenant, app),
and a test send when an address is given; without one the run says plainly that mailbox
access (an application access policy or RBAC scope, the mailbox being in Exchange
Online) is only proven by a send. Graph's failures are the engine's ``DeliveryError``,
diagnosed from the same table as SMTP's.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

from smtp_settings import diagnosis
from smtp_settings.mail import endpoint, jwt_claims, microsoft, oauth
from smtp_settings.mail.errors import DeliveryError
from smtp_settings.mail.graph import GraphTransport, graph_origin, graph_scope
from smtp_settings.models import RunScope, StepStatus, ValidationRun
from smtp_settings.validation import token_check
from smtp_settings.validation.outcome import Outcome, StepRunner

GRAPH_STEPS: tuple[tuple[str, str], ...] = (
    ("token", "Token"),
    ("token_contents", "Token contents"),
    ("send", "Test send"),
)
NOT_PROVEN = (
    "Skipped: no address in Send test email to. The token shows the app may send through "
    "Graph, but whether it may send as this mailbox (an application access policy or RBAC "
    "for Applications scope, the mailbox being in Exchange Online) is only proven by a send."
)


def run_graph(
    runner: StepRunner, build: Callable[[ValidationRun, endpoint.MailSettings], EmailMessage]
) -> None:
    """The Graph steps of a full run (the caller catches the runner's stop); the test
    message (``build``: Validate's own) is sent when the run names an address."""
    with runner.step("token") as outcome:
        _token(runner, outcome)
    with runner.step("token_contents") as outcome:
        _contents(runner, outcome)
    if runner.scope == RunScope.TOKEN:  # the setup assistant's token check ends here
        return
    if outcome.status == StepStatus.FAILED:
        runner.rows.skip(["send"], "Skipped: this token cannot send through Graph.")
        return
    if not runner.run_row.test_recipient:
        runner.rows.skip(["send"], NOT_PROVEN)
        return
    with runner.step("send") as outcome:
        _send(runner, outcome, build(runner.run_row, runner.mail))


def _token(runner: StepRunner, outcome: Outcome) -> None:
    scope = graph_scope(runner.mail)
    runner.token = endpoint.acquire_token(
        runner.mail, timeout=runner.timeout, fresh=True, scopes=[scope]
    )
    outcome.detail = (
        f"Entra ID issued a Microsoft Graph token, valid for "
        f"{runner.token.expires_in // 60} minutes."
    )
    outcome.facts = [
        ["Authority", oauth.authority_from_token_endpoint(runner.mail.token_endpoint)],
        ["Scope", scope],
    ]


def _has_smtp_send_as(mail: endpoint.MailSettings, *, timeout: float) -> bool:
    """Whether the app holds SMTP.SendAsApp instead: one Exchange token, read only."""
    graph_host = graph_scope(mail).removesuffix("/.default")
    cloud = next((c for c in microsoft.CLOUDS if c.graph_resource == graph_host), microsoft.GLOBAL)
    try:
        token = endpoint.acquire_token(
            mail, timeout=timeout, fresh=True, scopes=[cloud.exchange_scope]
        )
    except oauth.TokenError:
        return False
    claims = jwt_claims.read_claims(token.access_token) or {}
    return microsoft.SEND_AS_APP_ROLE in [str(role) for role in claims.get("roles") or []]


def _contents(runner: StepRunner, outcome: Outcome) -> None:
    token = runner.token
    claims = jwt_claims.read_claims(token.access_token) if token else None
    if claims is None:
        outcome.detail = "Could not read the token (not a JWT); nothing checked."
        return
    runner.fill = diagnosis.values_for(runner.mail, claims=claims)
    if "sp_object_id" in runner.fill:
        # The token's oid is the Enterprise application's Object ID: the setup assistant
        # fills it into the RBAC for Applications script instead of a placeholder.
        runner.outputs["sp_object_id"] = runner.fill["sp_object_id"]
    runner.evidence = diagnosis.Evidence.from_claims(claims)
    outcome.facts = token_check.claim_facts(claims)
    problems = token_check.graph_claim_problems(claims, runner.mail)
    if (
        problems
        and problems[0][0] == "graph_no_mail_send"
        and _has_smtp_send_as(runner.mail, timeout=runner.timeout)
    ):
        problems[0] = ("graph_smtp_instead", "The app holds SMTP.SendAsApp, not Mail.Send.")
    if token_check.only_mail_send_missing(problems):
        # Maybe RBAC for Applications (never in the token): the send, if any, tells.
        outcome.status = StepStatus.WARNING
        outcome.detail = token_check.RBAC_ONLY_DETAIL
        outcome.finding = runner._diagnose("token_contents", kind=problems[0][0])
        return
    if problems:
        outcome.status = StepStatus.FAILED
        outcome.detail = " ".join(text for _, text in problems)
        outcome.finding = runner._diagnose("token_contents", kind=problems[0][0])
        return
    outcome.detail = "Issued for Microsoft Graph to this app, with the Mail.Send role."


def _send(runner: StepRunner, outcome: Outcome, message: EmailMessage) -> None:
    mail = runner.mail
    recipient = str(message["To"])
    transport = GraphTransport(mail, timeout=runner.timeout)
    try:
        outcome.answer = transport.send(
            mailbox=mail.sender_email, recipients=[recipient], message=message
        )
    except DeliveryError as error:
        outcome.status = StepStatus.FAILED
        outcome.detail = error.message
        outcome.answer = error.answer
        outcome.finding = runner._diagnose(error.stage, kind=error.kind, answer=error.answer)
        return
    finally:
        transport.close_all()
    host = graph_origin(mail)[0]
    outcome.detail = f"Microsoft Graph ({host}) accepted a test message for {recipient}."
