"""The sandbox's Graph stand-in answers sendMail as Microsoft Graph does (issue 20's real
part): tokens checked, mailbox scopes, Graph's error bodies, 429 with Retry-After, MIME in."""

from __future__ import annotations

import base64
import email
import email.policy
from typing import Any

import pytest
import requests
from django.core.mail import EmailMessage

from smtp_settings.mail import oauth

from .sandbox.directory import GRAPH_RESOURCE
from .sandbox.world import CLIENT_ID, CLIENT_SECRET, SENDER, TENANT_ID


def graph_token(sandbox: Any, scope: str = f"{GRAPH_RESOURCE}/.default") -> str:
    return oauth.acquire_token(
        token_endpoint=sandbox.entra.token_endpoint(TENANT_ID),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes=[scope],
        timeout=5,
        fresh=True,
    ).access_token


def send(sandbox: Any, token: str, mime: bytes, user: str = SENDER) -> requests.Response:
    return requests.post(
        f"{sandbox.graph.base_url}/v1.0/users/{user}/sendMail",
        data=base64.b64encode(mime),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        verify=str(sandbox.ca_bundle),
        timeout=5,
    )


def mime(bcc: bool = False) -> bytes:
    message = EmailMessage("Hello", "Body", SENDER, ["it@x.example"])
    built = message.message()
    if bcc:
        built["Bcc"] = "hidden@x.example"
    return built.as_bytes()


@pytest.fixture
def mail_send(sandbox: Any) -> str:
    sandbox.app.roles[GRAPH_RESOURCE] = ["Mail.Send"]
    return graph_token(sandbox)


def test_a_mime_message_is_delivered_with_bcc_recipients_and_without_their_header(
    sandbox: Any, mail_send: str
) -> None:
    answer = send(sandbox, mail_send, mime(bcc=True))
    assert answer.status_code == 202 and answer.content == b""
    envelope, content = sandbox.exchange.delivered[-1]
    assert envelope.rcpt_tos == ["it@x.example", "hidden@x.example"]
    delivered = email.message_from_bytes(content, policy=email.policy.default)
    assert delivered["Bcc"] is None and delivered["Subject"] == "Hello"


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no Mail.Send", 403, "ErrorAccessDenied"),
        ("an Exchange token", 401, "InvalidAuthenticationToken"),
        ("unknown mailbox", 404, "ErrorInvalidUser"),
        ("mailbox on-premises", 404, "MailboxNotEnabledForRESTAPI"),
        ("outside the app's scope", 403, "ErrorAccessDenied"),
        ("throttled", 429, "ApplicationThrottled"),
        ("too large", 413, "RequestBodyTooLarge"),
    ],
)
def test_graphs_refusals_come_as_graph_words_them(
    sandbox: Any, case: str, status: int, code: str
) -> None:
    sandbox.app.roles[GRAPH_RESOURCE] = ["Mail.Send"]
    user, message = SENDER, mime()
    if case == "no Mail.Send":
        sandbox.app.roles[GRAPH_RESOURCE] = []
    token = graph_token(sandbox)
    if case == "an Exchange token":
        token = graph_token(sandbox, "https://outlook.office365.com/.default")
    elif case == "unknown mailbox":
        user = "nobody@sandbox.example"
    elif case == "mailbox on-premises":
        sandbox.mailbox.graph_disabled = True
    elif case == "outside the app's scope":
        sandbox.tenant.graph_scopes[sandbox.app.service_principal_id] = {"other@sandbox.example"}
    elif case == "throttled":
        sandbox.graph.throttle_next = 1
    elif case == "too large":
        message = message + b"x" * (4 * 1024 * 1024)
    answer = send(sandbox, token, message, user=user)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    if case == "throttled":
        assert answer.headers["Retry-After"] == "3"
    assert len(sandbox.exchange.delivered) == 0
