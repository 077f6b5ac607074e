"""The sandbox's Graph stand-in answers sendMail as Microsoft Graph does (issue 20's real
part): tokens checked, mailbox scopes, Graph's error bodies, 429 with Retry-After, MIME in."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.mail import EmailMessage

from smtp_settings.mail import oauth

from .sandbox.directory import EXCHANGE_RESOURCE, GRAPH_RESOURCE
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


# -- the sandbox ready for Graph, and its switches (make sandbox, README) -------------------

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def switch(sandbox: Any, path: str) -> requests.Response:
    return requests.post(
        f"{sandbox.graph.base_url}/sandbox/graph/{path}",
        verify=str(sandbox.ca_bundle),
        timeout=5,
    )


def test_the_ready_app_sends_through_graph_as_it_is(sandbox: Any) -> None:
    # No role granted by the test: make sandbox's app holds Mail.Send out of the box.
    answer = send(sandbox, graph_token(sandbox), mime())
    assert answer.status_code == 202, answer.text


def test_the_switches_throttle_graph_and_put_a_mailbox_out_of_the_apps_scope(
    sandbox: Any,
) -> None:
    token = graph_token(sandbox)
    assert switch(sandbox, "throttle?requests=2&retry_after=7").json()["throttle_next"] == 2
    for _ in range(2):
        answer = send(sandbox, token, mime())
        assert (answer.status_code, answer.headers["Retry-After"]) == (429, "7")
    assert send(sandbox, token, mime()).status_code == 202

    assert switch(sandbox, f"out-of-scope?mailbox={SENDER}").status_code == 200
    answer = send(sandbox, token, mime())
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "ErrorAccessDenied")
    switch(sandbox, f"in-scope?mailbox={SENDER}")
    assert send(sandbox, token, mime()).status_code == 202
    assert switch(sandbox, "out-of-scope?mailbox=nobody@sandbox.example").status_code == 404
    unnamed = switch(sandbox, "out-of-scope")
    assert unnamed.status_code == 400 and "?mailbox=" in unnamed.text
    assert switch(sandbox, "throttle?requests=many").status_code == 400


def test_the_readmes_switch_commands_work_as_pasted(sandbox: Any) -> None:
    """The README's curl lines, with this sandbox's port and CA in place of make sandbox's."""
    lines = [
        re.sub(r"\s+#.*$", "", line).strip()
        for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
        for line in block.splitlines()
        if "/sandbox/graph/" in line
    ]
    assert len(lines) >= 3, "the README shows the Graph stand-in's switches"
    token = graph_token(sandbox)
    for line in lines:
        command = line.replace("var/sandbox/ca-bundle.pem", str(sandbox.ca_bundle)).replace(
            "127.0.0.1:8444", sandbox.graph.host
        )
        done = subprocess.run(
            ["bash", "-c", command + " --fail --silent --max-time 5"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr)
        throttled = re.search(r"/throttle\?requests=(\d+)&retry_after=(\d+)", line)
        if throttled:
            for _ in range(int(throttled.group(1))):
                answer = send(sandbox, token, mime())
                assert answer.status_code == 429
                assert answer.headers["Retry-After"] == throttled.group(2)
        if "/out-of-scope" in line:
            assert send(sandbox, token, mime()).status_code == 403
        if "/permission?mail_send=off" in line:
            # Tokens issued from now on lack the role: Graph refuses them.
            refused = send(sandbox, graph_token(sandbox), mime())
            assert refused.status_code == 403 and "ErrorAccessDenied" in refused.text
            smtp_role = "smtp_send_as=off" not in line
            assert (sandbox.app.roles[EXCHANGE_RESOURCE] == ["SMTP.SendAsApp"]) is smtp_role
            # The reply says what now holds, so whoever typed the switch sees it took.
            granted = json.loads(done.stdout)["permissions"][sandbox.app.client_id]
            assert granted == {"mail_send": False, "smtp_send_as": smtp_role}
    assert sandbox.app.roles[GRAPH_RESOURCE] == ["Mail.Send"]  # reset gave it back


def test_make_sandboxs_flags_switch_graph_from_the_start(tmp_path: Path) -> None:
    ports = ["--entra-port", "0", "--smtp-port", "0", "--graph-port", "0"]
    flags = ["--graph-throttle", "2", "--graph-retry-after", "9", "--graph-out-of-scope", SENDER]
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "tests.sandbox", "--folder", str(tmp_path), *ports, *flags],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        printed = ""
        deadline = time.monotonic() + 30
        assert sandbox.stdout is not None
        while "Delivered test messages" not in printed and time.monotonic() < deadline:
            printed += sandbox.stdout.readline()
        host = re.search(r"Graph Host (\S+),", printed)
        assert host, printed
        assert f"SMTP_GRAPH_HOSTS={host.group(1)}" in printed
        # On ports of its own, the command it prints names them (as pasted, it works).
        assert f"Microsoft Graph stand-in on https://{host.group(1)}" in printed
        graph_port = host.group(1).rsplit(":", 1)[1]
        assert re.search(
            rf"make run-with-sandbox SANDBOX_ENTRA_PORT=\d+ SANDBOX_GRAPH_PORT={graph_port}\n",
            printed,
        ), printed
        # An idempotent switch answers with what holds: the flags' throttle and scope.
        state = requests.post(
            f"https://{host.group(1)}/sandbox/graph/out-of-scope?mailbox={SENDER}",
            verify=str(tmp_path / "ca-bundle.pem"),
            timeout=5,
        ).json()
        assert (state["throttle_next"], state["retry_after"]) == (2, 9)
        assert list(state["scopes"].values()) == [[]]
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=15)
