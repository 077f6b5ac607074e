"""Validate for Send through: Microsoft Graph (issue 20): its own steps, and every Graph
diagnosis row provoked against the sandbox's Graph stand-in."""

from __future__ import annotations

from typing import Any

import pytest

from smtp_settings.forms import SmtpSettingsForm
from smtp_settings.models import SmtpSettings

from .sandbox.directory import EXCHANGE_RESOURCE, GRAPH_RESOURCE
from .sandbox.world import SENDER

pytestmark = pytest.mark.django_db


@pytest.fixture
def graph(sandbox: Any, settings: Any) -> Any:
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    sandbox.app.roles[GRAPH_RESOURCE] = ["Mail.Send"]
    return sandbox


def graph_form(sandbox: Any, **changes: Any) -> dict[str, Any]:
    values = {**sandbox.form_values(), "transport": "graph", "graph_host": sandbox.graph.host}
    for name in ("smtp_server", "port", "use_ssl_tls"):
        values.pop(name)  # hidden with Graph: the page does not send them
    return {**values, **changes}


def statuses(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["key"], step["status"]) for step in result["steps"]]


def test_graph_passes_token_contents_and_a_test_send(graph: Any, run_validation: Any) -> None:
    result = run_validation(graph_form(graph), recipient="it@elsewhere.example")
    assert statuses(result) == [
        ("token", "passed"),
        ("token_contents", "passed"),
        ("send", "passed"),
    ]
    assert result["status"] == "passed"
    envelope, content = graph.exchange.delivered[-1]
    assert envelope.rcpt_tos == ["it@elsewhere.example"]
    assert b"through Microsoft Graph as" in content
    assert graph.graph.requests[-1]["user"] == SENDER


def test_without_an_address_it_says_only_a_send_proves_mailbox_access(
    graph: Any, run_validation: Any
) -> None:
    result = run_validation(graph_form(graph))
    send = result["by_step"]["send"]
    assert send["status"] == "skipped"
    assert "only proven by a send" in send["detail"]
    assert result["status"] == "passed"
    assert graph.graph.requests == []


def test_the_saved_form_keeps_the_smtp_fields_and_needs_oauth(graph: Any) -> None:
    form = SmtpSettingsForm(graph_form(graph), instance=SmtpSettings.load())
    assert form.is_valid(), form.errors
    assert form.cleaned_data["transport"] == "graph"
    # Hidden with Graph: not among the values saved, so the stored ones stay as they were.
    assert {"smtp_server", "port", "use_ssl_tls", "scopes"}.isdisjoint(form.cleaned_data)
    basic = SmtpSettingsForm(
        graph_form(graph, auth_type="basic", username="u", password="p"),
        instance=SmtpSettings.load(),
    )
    assert not basic.is_valid()
    assert "OAuth 2.0 only" in basic.errors["auth_type"][0]
    smtp = SmtpSettingsForm(graph_form(graph, transport="smtp"), instance=SmtpSettings.load())
    assert not smtp.is_valid() and "smtp_server" in smtp.errors


def test_a_graph_host_not_allowed_is_a_field_error(graph: Any, settings: Any) -> None:
    settings.SMTP_GRAPH_HOSTS = []
    form = SmtpSettingsForm(graph_form(graph), instance=SmtpSettings.load())
    assert not form.is_valid()
    assert "SMTP_GRAPH_HOSTS" in form.errors["graph_host"][0]


@pytest.mark.parametrize(
    ("case", "step", "row"),
    [
        ("Mail.Send missing", "token_contents", "graph_no_mail_send"),
        ("SMTP permission instead", "token_contents", "graph_smtp_instead"),
        ("outside the app's scope", "send", "graph_access_scope"),
        ("unknown mailbox", "send", "graph_invalid_user"),
        ("mailbox on-premises", "send", "graph_not_rest"),
        ("throttled", "send", "graph_throttled"),
    ],
)
def test_each_graph_diagnosis_row_is_provoked(
    graph: Any, run_validation: Any, case: str, step: str, row: str
) -> None:
    values = graph_form(graph)
    if case == "Mail.Send missing":
        graph.app.roles[GRAPH_RESOURCE] = []
        graph.app.roles[EXCHANGE_RESOURCE] = []
    elif case == "SMTP permission instead":
        graph.app.roles[GRAPH_RESOURCE] = []
    elif case == "outside the app's scope":
        graph.tenant.graph_scopes[graph.app.service_principal_id] = {"other@sandbox.example"}
    elif case == "unknown mailbox":
        values["sender_email"] = "nobody@sandbox.example"
    elif case == "mailbox on-premises":
        graph.mailbox.graph_disabled = True
    elif case == "throttled":
        graph.graph.throttle_next = 1
    result = run_validation(values, recipient="it@elsewhere.example")
    found = result["by_step"][step]
    if case == "Mail.Send missing":
        # No Mail.Send in the token is also what RBAC for Applications looks like (Exchange
        # grants it per request): a warning, and the send tells; here Graph refuses it.
        assert (found["status"], found["diagnosis"]) == ("warning", row), found
        refused = result["by_step"]["send"]
        assert (refused["status"], refused["diagnosis"]) == ("failed", "graph_access_denied")
        assert result["status"] == "failed"
        return
    assert found["status"] == "failed", found
    assert found["diagnosis"] == row, found
    if case == "throttled":  # how long Graph asked to wait is part of the answer shown
        assert f"(Retry-After: {graph.graph.throttle_seconds:g} s)" in found["server_answer"]
    assert found["cause"] and found["fix"]
    assert result["status"] == "failed"
    if step == "token_contents":
        assert result["by_step"]["send"]["status"] == "skipped"
        assert graph.graph.requests == []


def test_a_token_without_mail_send_is_not_failed_when_rbac_for_applications_lets_the_app_send(
    graph: Any, run_validation: Any
) -> None:
    # Step 5's advice: the Entra grant removed, Exchange's RBAC assignment kept. The
    # sandbox's Graph honours an assignment held by Exchange (the scope) without the role.
    graph.app.roles[GRAPH_RESOURCE] = []
    graph.app.roles[EXCHANGE_RESOURCE] = []
    graph.tenant.graph_rbac_grants.add(graph.app.service_principal_id)
    graph.tenant.graph_scopes[graph.app.service_principal_id] = {SENDER}
    result = run_validation(graph_form(graph), recipient="it@elsewhere.example")
    assert result["by_step"]["token_contents"]["status"] == "warning"
    assert result["by_step"]["send"]["status"] == "passed"
    assert result["status"] != "failed"


def test_a_graph_host_the_console_cannot_tell_is_refused_next_to_the_field(
    graph: Any, admin_client: Any
) -> None:
    # The sandbox's token endpoint is not Microsoft's: without Graph Host, no Graph is known,
    # and every send would fail although the token is fine. Said at Save and Validate.
    form = SmtpSettingsForm(graph_form(graph, graph_host=""), instance=SmtpSettings.load())
    assert not form.is_valid()
    said = form.errors["graph_host"][0]
    assert "not a Microsoft login host" in said and graph.graph.host in said
    answer = admin_client.post("/administration/smtp/", graph_form(graph, graph_host=""))
    assert answer.status_code == 400 and not SmtpSettings.objects.exists()
    assert graph.graph.requests == []


def test_a_token_for_another_audience_is_diagnosed() -> None:
    from smtp_settings import diagnosis
    from smtp_settings.mail.endpoint import MailSettings
    from smtp_settings.validation.token_check import graph_claim_problems

    mail = MailSettings.from_values(
        {"smtp_server": "", "port": 587, "use_ssl_tls": True, "sender_email": SENDER}
    )
    claims = {"aud": "https://outlook.office365.com", "roles": ["Mail.Send"]}
    kind = graph_claim_problems(claims, mail)[0][0]
    finding = diagnosis.diagnose("token_contents", kind=kind)
    assert finding is not None and finding.key == "graph_wrong_audience"


@pytest.fixture
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


def save_graph_row(sandbox: Any) -> None:
    from .sandbox.world import CLIENT_SECRET

    row = SmtpSettings.load()
    row.transport, row.graph_host, row.sender_email = "graph", sandbox.graph.host, SENDER
    row.auth_type, row.client_id = "oauth2", sandbox.form_values()["client_id"]
    row.token_endpoint, row.client_secret = sandbox.form_values()["token_endpoint"], CLIENT_SECRET
    row.save()


@pytest.mark.usefixtures("_outbox_backend")
@pytest.mark.parametrize("case", ["graph_access_denied", "graph_invalid_token", "graph_too_large"])
def test_graph_rows_the_outbox_meets_are_provoked(graph: Any, case: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from django.core import mail

    from smtp_settings import outbox
    from smtp_settings.models import Delivery

    save_graph_row(graph)
    message = mail.EmailMessage("Row", "Body", SENDER, ["it@x.example"])
    if case == "graph_access_denied":
        graph.app.roles[GRAPH_RESOURCE] = []  # the token has no Mail.Send
    elif case == "graph_invalid_token":
        # Graph no longer trusts the key the tokens are signed with.
        graph.graph.entra_public_key = rsa.generate_private_key(65537, 2048).public_key()
    elif case == "graph_too_large":
        message.attach("big.bin", b"\x00" * (3 * 1024 * 1024 + 200_000), "application/pdf")
    message.send()
    outbox.outbox_deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.diagnosis == case, (delivery.last_error, delivery.diagnosis)
    assert delivery.cause and delivery.fix
    expected = "failed" if case == "graph_too_large" else "held"
    assert delivery.state == expected
