"""Every diagnosis row, provoked against the sandbox over real sockets.

Each test breaks one thing in a ready tenant and checks that Validate names the
step that failed, the cause and the fix (PowerShell filled in where one applies).
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from smtp_settings.mail import transport

from .sandbox.exchange import ExchangeStandIn, free_port
from .sandbox.pki import SandboxPKI
from .sandbox.world import CLIENT_ID, CLIENT_SECRET, SENDER, TENANT_ID

pytestmark = pytest.mark.django_db

ORDER = ["token", "token_contents", "connect", "tls", "authenticate", "sender", "send"]


def failed_at(result: dict[str, Any], step: str, row: str) -> dict[str, Any]:
    """Assert ``step`` failed with diagnosis ``row`` and every later step was skipped."""
    found = result["by_step"][step]
    assert found["status"] == "failed", found
    assert found["diagnosis"] == row, found
    assert found["cause"] and found["fix"]
    for later in ORDER[ORDER.index(step) + 1 :]:
        assert result["by_step"][later]["status"] == "skipped"
    assert result["status"] == "failed"
    return found


# -- the happy path ----------------------------------------------------------------------


def test_ready_tenant_passes_every_step_and_delivers(sandbox: Any, run_validation: Any) -> None:
    result = run_validation(sandbox.form_values(), recipient="it@elsewhere.example")
    assert [step["status"] for step in result["steps"]] == ["passed"] * 7
    assert result["status"] == "passed"
    envelope, content = sandbox.exchange.delivered[-1]
    assert envelope.mail_from == SENDER and envelope.rcpt_tos == ["it@elsewhere.example"]
    assert b"Subject: SEI Administration test message (validation" in content
    assert "Queued" in result["by_step"]["send"]["server_answer"]


def test_without_a_test_address_the_send_step_is_skipped(sandbox: Any, run_validation: Any) -> None:
    result = run_validation(sandbox.form_values())
    assert result["by_step"]["send"]["status"] == "skipped"
    assert result["by_step"]["sender"]["status"] == "passed"
    assert result["status"] == "passed"
    # Not "every step passed": one was not run.
    assert result["summary"].startswith("Every step it ran passed; no test message was sent")
    assert sandbox.exchange.delivered == []


# -- Entra ID (reference section 5) ------------------------------------------------------


def test_wrong_secret(sandbox: Any, run_validation: Any) -> None:
    step = failed_at(
        run_validation({**sandbox.form_values(), "client_secret": "the-secret-id-by-mistake"}),
        "token",
        "aadsts_wrong_secret",
    )
    assert "AADSTS7000215" in step["server_answer"]
    assert "Value" in step["fix"]
    facts = dict(step["facts"])
    assert facts["Correlation ID"] and facts["Trace ID"]


def test_secret_id_pasted_instead_of_its_value(sandbox: Any, run_validation: Any) -> None:
    secret_id = sandbox.app.secret_ids[CLIENT_SECRET]
    step = failed_at(
        run_validation({**sandbox.form_values(), "client_secret": secret_id}),
        "token",
        "aadsts_secret_id",
    )
    assert "AADSTS7000215" in step["server_answer"]
    assert "Secret ID" in step["cause"] and "Value" in step["fix"]


def test_graph_mail_send_instead_of_smtp_send_as_app_is_named_by_a_token_check(
    sandbox: Any, admin_user: Any
) -> None:
    from smtp_settings import validation
    from smtp_settings.models import RunScope, ValidationRun

    sandbox.app.roles = {"https://graph.microsoft.com": ["Mail.Send"]}
    started = validation.validation_run_start(
        values={**sandbox.form_values(), "port": int(sandbox.form_values()["port"])},
        user=admin_user,
        scope=RunScope.TOKEN,
    )
    validation.validation_run_execute(run_id=str(started.id))
    result = validation.validation_run_as_dict(run=ValidationRun.objects.get(pk=started.pk))
    assert [step["key"] for step in result["steps"]] == ["token", "token_contents"]
    contents = result["steps"][1]
    assert contents["status"] == "failed"
    assert contents["diagnosis"] == "token_graph_mail_send"
    assert "Mail.Send" in contents["cause"] and "Office 365 Exchange Online" in contents["fix"]
    assert result["status"] == "failed"


def test_expired_secret(sandbox: Any, run_validation: Any) -> None:
    sandbox.app.secrets = dict.fromkeys(sandbox.app.secrets, True)
    step = failed_at(run_validation(sandbox.form_values()), "token", "aadsts_secret_expired")
    assert "Secret Expiration Date" in step["fix"]


def test_no_secret_sent(sandbox: Any, run_validation: Any) -> None:
    def drop_secret(run: Any) -> None:
        run.candidate_secret = None
        run.save()

    failed_at(
        run_validation(sandbox.form_values(), before=drop_secret), "token", "aadsts_no_secret"
    )


def test_unknown_application(sandbox: Any, run_validation: Any) -> None:
    values = {**sandbox.form_values(), "client_id": "0e9f7a3c-1111-4222-8333-944455556666"}
    step = failed_at(run_validation(values), "token", "aadsts_unknown_app")
    assert "AADSTS700016" in step["server_answer"]


def test_unknown_tenant(sandbox: Any, run_validation: Any) -> None:
    endpoint = sandbox.entra.token_endpoint("9d1c0b7a-0000-4000-8000-000000000999")
    step = failed_at(
        run_validation({**sandbox.form_values(), "token_endpoint": endpoint}),
        "token",
        "aadsts_unknown_tenant",
    )
    assert "AADSTS90002" in step["server_answer"]


def _tenant_reaching_entra(sandbox: Any, tenant: str) -> Any:
    # The form refuses such a tenant, on Microsoft's hosts and on allowed ones alike; a run
    # or settings made before that rule still explain Entra's answer.
    def endpoint(run: Any) -> None:
        run.candidate["token_endpoint"] = sandbox.entra.token_endpoint(tenant)
        run.save()

    return endpoint


def test_malformed_tenant(sandbox: Any, run_validation: Any) -> None:
    before = _tenant_reaching_entra(sandbox, "TENANT%5FID%5FHERE")
    step = failed_at(
        run_validation(sandbox.form_values(), before=before), "token", "aadsts_malformed_tenant"
    )
    assert "AADSTS900023" in step["server_answer"]


def test_shared_tenant(sandbox: Any, run_validation: Any) -> None:
    before = _tenant_reaching_entra(sandbox, "common")
    failed_at(run_validation(sandbox.form_values(), before=before), "token", "aadsts_shared_tenant")


def test_malformed_scope(sandbox: Any, run_validation: Any) -> None:
    values = {**sandbox.form_values(), "scopes": "https://outlook.office365.com/$/.default"}
    step = failed_at(run_validation(values), "token", "aadsts_bad_scope")
    assert "https://outlook.office365.com/.default" in step["fix"]


def test_scope_without_default_reaching_entra(sandbox: Any, run_validation: Any) -> None:
    # The form refuses such a scope; a run made before that rule existed still explains it.
    def permission_scope(run: Any) -> None:
        run.candidate["scopes"] = "https://outlook.office365.com/SMTP.SendAsApp"
        run.save()

    step = failed_at(
        run_validation(sandbox.form_values(), before=permission_scope), "token", "aadsts_bad_scope"
    )
    assert "AADSTS1002012" in step["server_answer"]


def test_unknown_resource(sandbox: Any, run_validation: Any) -> None:
    values = {**sandbox.form_values(), "scopes": "https://outlook.office356.com/.default"}
    failed_at(run_validation(values), "token", "aadsts_unknown_resource")


def test_disabled_application(sandbox: Any, run_validation: Any) -> None:
    sandbox.app.enabled = False
    failed_at(run_validation(sandbox.form_values()), "token", "aadsts_app_disabled")


def test_conditional_access(sandbox: Any, run_validation: Any) -> None:
    sandbox.app.blocked_by_conditional_access = True
    failed_at(run_validation(sandbox.form_values()), "token", "aadsts_conditional_access")


def test_entra_server_error(sandbox: Any, run_validation: Any) -> None:
    sandbox.entra.server_error = True
    failed_at(run_validation(sandbox.form_values()), "token", "token_endpoint_server_error")


def test_other_entra_refusals_still_show_the_answer(sandbox: Any, run_validation: Any) -> None:
    sandbox.entra.forced_error = (400, "invalid_request", 90014)
    step = failed_at(run_validation(sandbox.form_values()), "token", "aadsts_other")
    assert "AADSTS90014" in step["server_answer"]
    assert dict(step["facts"])["Correlation ID"]


def test_token_endpoint_refusing_connections(
    sandbox: Any, run_validation: Any, settings: Any
) -> None:
    port = free_port()
    settings.SMTP_OAUTH_AUTHORITY_HOSTS = [*settings.SMTP_OAUTH_AUTHORITY_HOSTS, "127.0.0.1"]
    endpoint = f"https://127.0.0.1:{port}/{TENANT_ID}/oauth2/v2.0/token"
    values = {**sandbox.form_values(), "token_endpoint": endpoint}
    failed_at(run_validation(values), "token", "token_endpoint_unreachable")


def test_token_endpoint_that_never_answers(
    sandbox: Any, run_validation: Any, settings: Any, silent_server: int
) -> None:
    settings.SMTP_OAUTH_AUTHORITY_HOSTS = [*settings.SMTP_OAUTH_AUTHORITY_HOSTS, "127.0.0.1"]
    settings.SMTP_NETWORK_TIMEOUT_SECONDS = 1.0
    endpoint = f"https://127.0.0.1:{silent_server}/{TENANT_ID}/oauth2/v2.0/token"
    values = {**sandbox.form_values(), "token_endpoint": endpoint}
    failed_at(run_validation(values), "token", "token_endpoint_timeout")


def test_untrusted_token_endpoint(sandbox: Any, run_validation: Any, settings: Any) -> None:
    from .sandbox.entra import EntraStandIn

    stranger = EntraStandIn(sandbox.directory, SandboxPKI().server_context()).start()
    try:
        settings.SMTP_OAUTH_AUTHORITY_HOSTS = [f"127.0.0.1:{stranger.port}"]
        values = {**sandbox.form_values(), "token_endpoint": stranger.token_endpoint(TENANT_ID)}
        failed_at(run_validation(values), "token", "token_endpoint_tls")
    finally:
        stranger.stop()


# -- the token's contents ----------------------------------------------------------------


def test_token_without_the_role_warns_then_exchange_refuses(
    sandbox: Any, run_validation: Any
) -> None:
    sandbox.app.roles = {}
    result = run_validation(sandbox.form_values())
    contents = result["by_step"]["token_contents"]
    assert contents["status"] == "warning"
    assert contents["diagnosis"] == "token_without_role"
    assert "Grant admin consent" in contents["fix"] and "Mail.Send" in contents["cause"]
    # The token step showed the missing role: that is the one cause said at AUTH.
    step = failed_at(result, "authenticate", "auth_token_without_role")
    assert step["server_answer"].startswith("535 5.7.3")
    assert "Grant admin consent" in step["fix"] and "FullAccess" not in step["cause"]
    assert step["commands"] == []


def test_token_for_another_resource_warns(sandbox: Any, run_validation: Any) -> None:
    values = {**sandbox.form_values(), "scopes": "https://graph.microsoft.com/.default"}
    result = run_validation(values)
    contents = result["by_step"]["token_contents"]
    assert contents["status"] == "warning"
    assert contents["diagnosis"] == "token_wrong_audience"
    assert "graph.microsoft.com" in contents["detail"]
    assert "https://outlook.office365.com/.default" in contents["fix"]


def test_token_from_another_tenant_warns(sandbox: Any, run_validation: Any) -> None:
    sandbox.entra.claims_override = {"tid": "0a0b0c0d-0000-4000-8000-000000000abc"}
    result = run_validation(sandbox.form_values())
    assert result["by_step"]["token_contents"]["diagnosis"] == "token_wrong_tenant"


def test_token_for_another_app_warns(sandbox: Any, run_validation: Any) -> None:
    sandbox.entra.claims_override = {"appid": "0a0b0c0d-0000-4000-8000-000000000def"}
    result = run_validation(sandbox.form_values())
    assert result["by_step"]["token_contents"]["diagnosis"] == "token_wrong_app"


def test_token_contents_are_shown(sandbox: Any, run_validation: Any) -> None:
    facts = dict(run_validation(sandbox.form_values())["by_step"]["token_contents"]["facts"])
    assert facts["Audience"] == "https://outlook.office365.com"
    assert facts["Roles"] == "SMTP.SendAsApp"
    assert facts["Tenant"] == TENANT_ID and facts["Application"] == CLIENT_ID
    assert facts["Service principal object ID"] == sandbox.app.service_principal_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", facts["Expires"])


# -- reaching the SMTP server ------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback server that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_unresolvable_host(
    sandbox: Any, run_validation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Resolving a name would ask a DNS server off this machine; the resolver's own failure
    # is raised instead, exactly as the C library reports an unknown name.
    real_getaddrinfo = socket.getaddrinfo

    def unknown_name(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "smtp.office365.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(transport.socket, "getaddrinfo", unknown_name)
    values = {**sandbox.form_values(), "smtp_server": "smtp.office365.invalid"}
    step = failed_at(run_validation(values), "connect", "dns")
    assert "smtp.office365.invalid" in step["detail"]


def test_connection_refused(sandbox: Any, run_validation: Any) -> None:
    values = {**sandbox.form_values(), "port": str(free_port())}
    failed_at(run_validation(values), "connect", "refused")


def test_network_unreachable(
    sandbox: Any, run_validation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create_connection = socket.create_connection

    def no_route(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        if address[1] == sandbox.exchange.port:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(transport.socket, "create_connection", no_route)
    failed_at(run_validation(sandbox.form_values()), "connect", "unreachable")


def test_dead_host_fails_within_its_timeout(
    sandbox: Any, run_validation: Any, settings: Any, silent_server: int
) -> None:
    settings.SMTP_NETWORK_TIMEOUT_SECONDS = 1.0
    values = {**sandbox.form_values(), "port": str(silent_server)}
    step = failed_at(run_validation(values), "connect", "timeout")
    # Bounded by the timeout: one second, plus the token request before it.
    assert 900 <= step["duration_ms"] < 5000


def test_a_refused_token_ends_the_run_without_waiting_for_the_smtp_server(
    sandbox: Any, run_validation: Any, settings: Any, silent_server: int
) -> None:
    """Connect and TLS start while the token is asked for; a refused token cuts that session
    (the server here never answers) and shows nothing of it: the steps after are skipped."""
    settings.SMTP_NETWORK_TIMEOUT_SECONDS = 600.0  # an uncut session would hold the test
    values = {
        **sandbox.form_values(),
        "port": str(silent_server),
        "client_secret": "the-secret-id-by-mistake",
    }
    result = run_validation(values)
    failed_at(result, "token", "aadsts_wrong_secret")
    assert result["by_step"]["connect"]["detail"] == "Skipped: no token was issued."


def test_concurrent_connection_limit(sandbox: Any, run_validation: Any) -> None:
    from smtp_settings.mail import oauth

    token = oauth.acquire_token(
        token_endpoint=sandbox.entra.token_endpoint(TENANT_ID),
        client_id=CLIENT_ID,
        client_secret=sandbox.app.secrets and next(iter(sandbox.app.secrets)),
        scopes=["https://outlook.office365.com/.default"],
        timeout=5,
    )
    held = []
    for _ in range(3):
        connection = transport.SmtpConnection(
            transport.SmtpEndpoint("127.0.0.1", sandbox.exchange.port, use_tls=True, timeout=5)
        )
        connection.connect()
        connection.secure()
        connection.authenticate(transport.Credentials("oauth2", SENDER, token.access_token))
        held.append(connection)
    try:
        step = failed_at(
            run_validation(sandbox.form_values()), "authenticate", "concurrent_connections"
        )
        assert step["server_answer"].startswith("432 4.3.2")
    finally:
        for connection in held:
            connection.close()


def test_old_tls_refused(sandbox: Any, run_validation: Any) -> None:
    sandbox.exchange.handler.after_starttls_answer = (
        "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client."
    )
    failed_at(run_validation(sandbox.form_values()), "tls", "old_tls")


def test_ip_not_accepted(sandbox: Any, run_validation: Any) -> None:
    sandbox.exchange.handler.ip_blocked = True
    failed_at(run_validation(sandbox.form_values()), "sender", "ip_blocked")


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture
def other_exchange(sandbox: Any) -> Iterator[Any]:
    """Start an Exchange stand-in of a different make; stopped after the test."""
    started: list[ExchangeStandIn] = []

    def start(context: Any = None, **kwargs: Any) -> ExchangeStandIn:
        server = ExchangeStandIn(
            sandbox.directory,
            sandbox.entra.public_key,
            context or sandbox.pki.server_context(),
            **kwargs,
        ).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_starttls_not_offered(sandbox: Any, run_validation: Any) -> None:
    class Quiet:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    port = free_port()
    plain = Controller(Quiet(), hostname="127.0.0.1", port=port)
    plain.start()
    try:
        values = {**sandbox.form_values(), "port": str(port)}
        failed_at(run_validation(values), "tls", "starttls_missing")
    finally:
        plain.stop()


def test_untrusted_certificate(sandbox: Any, run_validation: Any, other_exchange: Any) -> None:
    server = other_exchange(SandboxPKI().server_context())
    values = {**sandbox.form_values(), "port": str(server.port)}
    failed_at(run_validation(values), "tls", "tls_untrusted")


def test_certificate_for_another_name(
    sandbox: Any, run_validation: Any, other_exchange: Any
) -> None:
    server = other_exchange(sandbox.pki.server_context("mail.example.org"))
    values = {**sandbox.form_values(), "port": str(server.port)}
    failed_at(run_validation(values), "tls", "tls_name_mismatch")


def test_expired_certificate(sandbox: Any, run_validation: Any, other_exchange: Any) -> None:
    server = other_exchange(sandbox.pki.server_context(expired=True))
    values = {**sandbox.form_values(), "port": str(server.port)}
    failed_at(run_validation(values), "tls", "tls_expired")


def test_tls_handshake_failure(sandbox: Any, run_validation: Any, other_exchange: Any) -> None:
    # A server that speaks only TLS 1.1 or older: the console never goes below TLS 1.2.
    context = sandbox.pki.server_context()
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    server = other_exchange(context)
    values = {**sandbox.form_values(), "port": str(server.port)}
    step = failed_at(run_validation(values), "tls", "tls_failed")
    assert "TLS failed" in step["detail"]


def test_a_run_with_tls_off_never_sends_the_token_in_clear(
    sandbox: Any, admin_user: Any, other_exchange: Any
) -> None:
    # The form refuses these values; the run is started from them directly, as if it had not.
    from smtp_settings import validation
    from smtp_settings.models import ValidationRun

    server = other_exchange(advertise_auth_before_tls=True)
    values = {
        **sandbox.form_values(),
        "port": server.port,
        "use_ssl_tls": False,
        "use_sender_email": True,
    }
    run = validation.validation_run_start(values=values, user=admin_user)
    validation.validation_run_execute(run_id=str(run.id))
    result = validation.validation_run_as_dict(run=ValidationRun.objects.get(pk=run.pk))
    result["by_step"] = {step["key"]: step for step in result["steps"]}
    tls_step = result["by_step"]["tls"]
    assert tls_step["status"] == "warning" and tls_step["diagnosis"] == "plaintext"
    failed_at(result, "authenticate", "plaintext_auth")
    assert server.handler.seen_auth_commands == 0


def test_an_auth_refusal_504_is_explained(sandbox: Any, run_validation: Any) -> None:
    sandbox.exchange.handler.scripted = {"AUTH": ["504 5.7.4 Unrecognized authentication type"]}
    step = failed_at(run_validation(sandbox.form_values()), "authenticate", "auth_before_tls")
    assert step["server_answer"].startswith("504 5.7.4")


# -- authentication ------------------------------------------------------------------------


def test_service_principal_not_registered_in_exchange(sandbox: Any, run_validation: Any) -> None:
    sandbox.tenant.exchange_service_principals.clear()
    result = run_validation(sandbox.form_values())
    step = failed_at(result, "authenticate", "auth_mailbox_permission")
    commands = "\n".join(step["commands"])
    assert f"Connect-ExchangeOnline -Organization '{TENANT_ID}'" in commands
    # The Enterprise application's Object ID is the token's oid: nothing left to look up.
    oid = sandbox.app.service_principal_id
    assert f"New-ServicePrincipal -AppId '{CLIENT_ID}' -ObjectId '{oid}'" in commands
    assert f"Add-MailboxPermission -Identity '{SENDER}' -User (@($sp.Id" in commands
    assert "<" not in commands and oid in step["fix"]
    assert result["by_step"]["token_contents"]["status"] == "passed"


def test_no_full_access_on_the_mailbox(sandbox: Any, run_validation: Any) -> None:
    sandbox.mailbox.full_access.clear()
    step = failed_at(
        run_validation(sandbox.form_values()), "authenticate", "auth_mailbox_permission"
    )
    assert SENDER in step["cause"]
    # The token carried SMTP.SendAsApp: consent is not offered as a cause.
    assert "the token carries SMTP.SendAsApp, so consent is in place" in step["cause"]
    assert "admin consent" not in step["fix"].lower()
    assert dict(step["facts"])["Offered mechanisms"] == "LOGIN XOAUTH2"


def test_without_the_tokens_evidence_a_535_names_every_cause() -> None:
    """The outbox has no token step before AUTH: the row that lists every cause answers."""
    from smtp_settings.diagnosis import diagnose

    finding = diagnose(
        "authenticate",
        answer="535 5.7.3 Authentication unsuccessful",
        auth_type="oauth2",
        values={"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "sender": SENDER},
    )
    assert finding is not None and finding.key == "auth_token_rejected"
    assert "lacks SMTP.SendAsApp" in finding.cause and "FullAccess" in finding.cause
    assert any("<ENTERPRISE_APP_OBJECT_ID>" in command for command in finding.commands)


@pytest.mark.parametrize("scope", ["Mailbox", "Tenant"])
def test_smtp_auth_disabled(sandbox: Any, run_validation: Any, scope: str) -> None:
    if scope == "Mailbox":
        sandbox.mailbox.smtp_auth_disabled = True
    else:
        sandbox.tenant.smtp_auth_disabled = True
    step = failed_at(run_validation(sandbox.form_values()), "authenticate", "auth_disabled")
    assert f"disabled for the {scope}" in step["server_answer"]
    assert (
        f"Set-CASMailbox -Identity '{SENDER}' -SmtpClientAuthenticationDisabled $false"
        in (step["commands"])
    )


def test_basic_authentication_retired(sandbox: Any, run_validation: Any) -> None:
    values = {**sandbox.form_values(), "auth_type": "basic", "username": SENDER, "password": "pw"}
    step = failed_at(run_validation(values), "authenticate", "basic_retired")
    assert result_skipped_token(run_validation, values)
    assert "OAuth 2.0" in step["fix"]


def result_skipped_token(run_validation: Any, values: dict[str, Any]) -> bool:
    return run_validation(values)["by_step"]["token"]["status"] == "skipped"


def test_basic_credentials_rejected(sandbox: Any, run_validation: Any) -> None:
    sandbox.exchange.handler.basic_users = {"relay": "right-password"}
    values = {**sandbox.form_values(), "auth_type": "basic", "username": "relay", "password": "x"}
    failed_at(run_validation(values), "authenticate", "credentials_rejected")


def test_xoauth2_not_offered(sandbox: Any, run_validation: Any, other_exchange: Any) -> None:
    server = other_exchange(excluded_mechanisms=("XOAUTH2",))
    values = {**sandbox.form_values(), "port": str(server.port)}
    step = failed_at(run_validation(values), "authenticate", "mechanism_missing")
    assert "it offers: LOGIN" in step["detail"]


def test_mailbox_throttled(sandbox: Any, run_validation: Any) -> None:
    sandbox.mailbox.throttled = True
    failed_at(run_validation(sandbox.form_values()), "authenticate", "throttled")


def test_commands_before_starttls_are_refused(sandbox: Any, run_validation: Any) -> None:
    values = {**sandbox.form_values(), "auth_type": "none"}
    del values["use_ssl_tls"]
    result = run_validation(values)
    assert result["by_step"]["tls"]["diagnosis"] == "plaintext"
    failed_at(result, "sender", "starttls_required")


# -- sender and sending ----------------------------------------------------------------------


def test_no_authentication_is_refused_at_mail_from(sandbox: Any, run_validation: Any) -> None:
    values = {**sandbox.form_values(), "auth_type": "none"}
    step = failed_at(run_validation(values), "sender", "not_authenticated")
    assert step["server_answer"].startswith("530 5.7.57")


def test_envelope_sender_other_than_the_mailbox(sandbox: Any, run_validation: Any) -> None:
    sandbox.tenant.add_mailbox("relay@sandbox.example")
    sandbox.exchange.handler.basic_users = {"relay@sandbox.example": "right-password"}
    values = {
        **sandbox.form_values(),
        "auth_type": "basic",
        "username": "relay@sandbox.example",
        "password": "right-password",
    }
    step = failed_at(run_validation(values), "sender", "send_as_envelope")
    assert step["server_answer"].startswith("550 5.7.60")


def test_from_header_refused_after_data(sandbox: Any, run_validation: Any) -> None:
    sandbox.mailbox.header_send_as_denied = True
    step = failed_at(
        run_validation(sandbox.form_values(), recipient="it@elsewhere.example"),
        "send",
        "send_as_header",
    )
    assert "Add-RecipientPermission" in step["commands"][0]


def test_submission_quota_exceeded(sandbox: Any, run_validation: Any) -> None:
    sandbox.mailbox.quota_exceeded = True
    failed_at(
        run_validation(sandbox.form_values(), recipient="it@elsewhere.example"), "send", "quota"
    )


def test_mailbox_full(sandbox: Any, run_validation: Any) -> None:
    sandbox.mailbox.full = True
    failed_at(
        run_validation(sandbox.form_values(), recipient="it@elsewhere.example"),
        "send",
        "mailbox_full",
    )


def test_unknown_recipient(sandbox: Any, run_validation: Any) -> None:
    sandbox.exchange.handler.recipient_answers["nobody@sandbox.example"] = (
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    )
    step = failed_at(
        run_validation(sandbox.form_values(), recipient="nobody@sandbox.example"),
        "sender",
        "recipient_not_found",
    )
    assert "Send test email to" in step["fix"]


def test_any_other_refusal_shows_the_server_answer(sandbox: Any, run_validation: Any) -> None:
    sandbox.exchange.handler.recipient_answers["busy@elsewhere.example"] = (
        "452 4.5.3 Too many recipients"
    )
    step = failed_at(
        run_validation(sandbox.form_values(), recipient="busy@elsewhere.example"),
        "sender",
        "smtp_refused",
    )
    assert step["server_answer"] == "452 4.5.3 Too many recipients"


def test_server_hanging_up_mid_conversation(sandbox: Any, run_validation: Any) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def greet_and_hang_up() -> None:
        connection, _ = listener.accept()
        connection.sendall(b"220 almost-smtp ready\r\n")
        connection.close()

    thread = threading.Thread(target=greet_and_hang_up, daemon=True)
    thread.start()
    try:
        values = {**sandbox.form_values(), "port": str(listener.getsockname()[1])}
        failed_at(run_validation(values), "connect", "connection_broken")
    finally:
        thread.join(5)
        listener.close()


def test_every_table_row_is_provoked_here() -> None:
    from pathlib import Path

    from smtp_settings.diagnosis import TABLE

    # Certificate credentials' rows and Graph's are provoked in their own files.
    here = Path(__file__)
    source = "".join(
        (here.parent / name).read_text()
        for name in (here.name, "test_credential_diagnosis.py", "test_graph_validate.py")
    )
    missing = [row.key for row in TABLE if f'"{row.key}"' not in source]
    assert missing == []


def test_validate_asks_entra_anew_so_a_new_consent_shows_at_once(
    sandbox: Any, run_validation: Any
) -> None:
    sandbox.app.roles = {}
    assert run_validation(sandbox.form_values())["status"] == "failed"
    sandbox.app.roles = {"https://outlook.office365.com": ["SMTP.SendAsApp"]}  # consent granted
    assert run_validation(sandbox.form_values())["status"] == "passed"


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain@contoso.example", "'plain@contoso.example'"),
        ('"$(Get-Date)"@contoso.example', "'\"$(Get-Date)\"@contoso.example'"),
        ("o'brien@contoso.example", "'o''brien@contoso.example'"),
        ("o\u2019brien@contoso.example", "'o\u2019\u2019brien@contoso.example'"),
        ("a';Remove-Item x;'@b.example", "'a'';Remove-Item x;''@b.example'"),
    ],
)
def test_powershell_values_are_single_quoted_with_quotes_doubled(value: str, quoted: str) -> None:
    from smtp_settings.diagnosis import diagnose
    from smtp_settings.powershell import powershell_quote

    assert powershell_quote(value) == quoted
    finding = diagnose(
        "authenticate", answer="535 5.7.3", auth_type="oauth2", values={"sender": value}
    )
    assert finding is not None
    assert any(f"-Identity {quoted}" in command for command in finding.commands)


# -- the client secret stays with the token endpoint's host ------------------------------


def test_a_redirecting_token_endpoint_gets_no_secret_elsewhere(
    sandbox: Any, run_validation: Any
) -> None:
    elsewhere = f"{sandbox.entra.base_url}/collector/oauth2/v2.0/token-copy"
    sandbox.entra.redirect_token_to = elsewhere
    step = failed_at(run_validation(sandbox.form_values()), "token", "token_redirect")
    assert "307" in step["server_answer"]
    assert sandbox.entra.stray_posts == []  # nothing followed the redirect


def test_discovery_naming_another_host_gets_no_secret(sandbox: Any, run_validation: Any) -> None:
    sandbox.entra.discovery_token_endpoint = (
        f"https://localhost:{sandbox.entra.port}/{TENANT_ID}/oauth2/v2.0/token"
    )
    step = failed_at(run_validation(sandbox.form_values()), "token", "token_foreign_host")
    assert "localhost" in step["server_answer"]
    assert sandbox.entra.token_requests == 0


def test_a_trickling_server_is_cut_off_at_the_step_deadline(
    sandbox: Any, run_validation: Any, settings: Any
) -> None:
    settings.SMTP_NETWORK_TIMEOUT_SECONDS = 1.0
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            while not stop.is_set():
                try:
                    connection.sendall(b"220-still here\r\n")
                except OSError:
                    return
                stop.wait(0.3)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        values = {**sandbox.form_values(), "port": str(listener.getsockname()[1])}
        started = time.monotonic()
        step = failed_at(run_validation(values), "connect", "timeout")
        assert time.monotonic() - started < 5
        assert "within 1 s" in step["detail"]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_a_service_that_is_not_smtp_is_named_and_barely_echoed(
    sandbox: Any, run_validation: Any, caplog: pytest.LogCaptureFixture
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    banner = b"SSH-2.0-OpenSSH_9.2p1 Debian-2" + b"x" * 300 + b"\x00\x01\r\n"

    def ssh_like() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(banner)
            connection.recv(1024)

    thread = threading.Thread(target=ssh_like, daemon=True)
    thread.start()
    caplog.set_level("INFO", logger="smtp_settings.validation.service")
    try:
        values = {**sandbox.form_values(), "port": str(listener.getsockname()[1])}
        step = failed_at(run_validation(values), "connect", "not_smtp")
        assert step["detail"].startswith("This is not an SMTP server")
        assert step["server_answer"].startswith("SSH-2.0-OpenSSH")
        assert len(step["server_answer"]) <= 100 and "\x00" not in step["server_answer"]
        assert f"127.0.0.1:{values['port']}" in caplog.text  # every target is logged
    finally:
        listener.close()
        thread.join(5)


def test_a_non_ascii_password_is_named_and_never_logged(
    sandbox: Any, admin_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The form refuses it; a run started from such values anyway fails clearly.
    from smtp_settings import validation
    from smtp_settings.models import ValidationRun

    caplog.set_level("DEBUG")
    password = "".join(["Gr", "\u00fc\u00dfe", "-2026"])
    values = {
        **sandbox.form_values(),
        "port": sandbox.exchange.port,
        "use_ssl_tls": True,
        "use_sender_email": True,
        "auth_type": "basic",
        "username": "relay@sandbox.example",
        "password": password,
    }
    sandbox.exchange.handler.basic_users["relay@sandbox.example"] = "anything"
    run = validation.validation_run_start(values=values, user=admin_user)
    validation.validation_run_execute(run_id=str(run.id))
    result = validation.validation_run_as_dict(run=ValidationRun.objects.get(pk=run.pk))
    result["by_step"] = {step["key"]: step for step in result["steps"]}
    failed_at(result, "authenticate", "not_ascii")
    assert password not in caplog.text


def test_a_test_recipient_smtp_cannot_carry_is_named_at_the_sender_step(
    sandbox: Any, run_validation: Any
) -> None:
    step = failed_at(
        run_validation(sandbox.form_values(), recipient="j\u00f6rg@elsewhere.example"),
        "sender",
        "address_not_ascii",
    )
    assert "SMTPUTF8" in step["detail"] and "only this message" in step["cause"]
    assert sandbox.exchange.delivered == []


def test_a_message_whose_domain_has_no_xn_form_fails_alone_in_the_outbox(
    sandbox: Any, settings: Any
) -> None:
    # Django's address check accepts the domain; in its xn-- form one part is too long.
    from django.core import mail

    from smtp_settings import outbox
    from smtp_settings.models import Delivery, DeliveryState

    from .test_sending import save

    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    save(sandbox.form_values())
    mail.send_mail("Unwritable", "Body", SENDER, ["a@" + "\u00e4" * 62 + ".example"])
    mail.send_mail("Fine", "Body", SENDER, ["it@elsewhere.example"])
    outbox.outbox_deliver_due()
    failed = Delivery.objects.get(email__subject="Unwritable")
    assert (failed.state, failed.diagnosis) == (DeliveryState.FAILED, "unwritable")
    assert Delivery.objects.get(email__subject="Fine").state == DeliveryState.SENT


def test_a_discovery_url_that_parsers_read_differently_gets_no_secret(
    sandbox: Any, run_validation: Any
) -> None:
    # urlsplit reads the authority's own host:port; the HTTP library would connect elsewhere.
    sandbox.entra.discovery_token_endpoint = (
        f"https://127.0.0.1:1\\@127.0.0.1:{sandbox.entra.port}/{TENANT_ID}/oauth2/v2.0/token"
    )
    failed_at(run_validation(sandbox.form_values()), "token", "token_foreign_host")
    assert sandbox.entra.token_requests == 0


def test_the_wrong_sender_page_shows_one_cause_and_offers_the_filled_script(
    sandbox: Any, run_validation: Any, admin_client: Any
) -> None:
    """A mailbox the app may not use, with a token that carries SMTP.SendAsApp: the run page
    names that one cause, fills the commands from the token, and offers the whole script."""
    from django.urls import reverse

    sandbox.mailbox.full_access.clear()
    result = run_validation(sandbox.form_values())
    failed_at(result, "authenticate", "auth_mailbox_permission")
    page = admin_client.get(reverse("smtp_settings:run_detail", args=[result["id"]]))
    html = page.content.decode()
    assert html.count('class="cause"') == 1
    oid = sandbox.app.service_principal_id
    assert f"-ObjectId &#x27;{oid}&#x27;" in html
    assert "SERVICE_PRINCIPAL_ID" not in html and "&lt;ENTERPRISE_APP_OBJECT_ID&gt;" not in html
    script_url = reverse("smtp_settings:run_script", args=[result["id"]])
    assert f'href="{script_url}"' in html

    script = admin_client.get(script_url)
    assert script["Content-Disposition"] == 'attachment; filename="sei-exchange-smtp-setup.ps1"'
    text = script.content.decode()
    assert f"$EnterpriseAppObjectId = '{oid}'" in text
    assert f"$TenantId = '{TENANT_ID}'" in text and f"$AppId = '{CLIENT_ID}'" in text
    assert f"    '{SENDER}'" in text
    assert "<ENTERPRISE_APP_OBJECT_ID>'" not in text.split("if ($EnterpriseAppObjectId -eq")[0]
