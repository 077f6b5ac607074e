"""The transport and the token client on their own, against the sandbox's real servers."""

from __future__ import annotations

import email
import ssl
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from smtp_settings.mail import oauth
from smtp_settings.mail.endpoint import MailSettings, smtp_endpoint
from smtp_settings.mail.transport import Credentials, SmtpConnection, SmtpEndpoint, SmtpFailure

from .sandbox.exchange import ExchangeStandIn, free_port
from .sandbox.world import CLIENT_ID, CLIENT_SECRET, SENDER, TENANT_ID

SCOPES = ["https://outlook.office365.com/.default"]


def token_for(sandbox: Any, secret: str = CLIENT_SECRET, fresh: bool = False) -> oauth.Token:
    return oauth.acquire_token(
        token_endpoint=sandbox.entra.token_endpoint(TENANT_ID),
        client_id=CLIENT_ID,
        client_secret=secret,
        scopes=SCOPES,
        timeout=5,
        fresh=fresh,
    )


def test_tokens_come_from_msal_cache_until_a_new_secret(sandbox: Any) -> None:
    first = token_for(sandbox)
    second = token_for(sandbox)
    assert not first.from_cache and second.from_cache
    assert second.access_token == first.access_token
    assert sandbox.entra.token_requests == 1
    sandbox.app.secrets["rotated~secret"] = False
    token_for(sandbox, secret="rotated~secret")
    assert sandbox.entra.token_requests == 2  # the new secret took effect at once
    token_for(sandbox, fresh=True)
    assert sandbox.entra.token_requests == 3


def test_a_refused_request_is_asked_again_after_the_fix(sandbox: Any) -> None:
    sandbox.app.enabled = False
    with pytest.raises(oauth.TokenError) as refused:
        token_for(sandbox)
    assert refused.value.error_codes == [7000112]
    sandbox.app.enabled = True  # fixed in Entra a moment later
    assert token_for(sandbox).access_token


def test_authority_is_the_endpoint_without_its_token_path() -> None:
    assert (
        oauth.authority_from_token_endpoint(
            f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/token"
        )
        == f"https://login.microsoftonline.com/{TENANT_ID}"
    )


def message(to: str, bcc: str = "") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, to, "Hello"
    if bcc:
        msg["Bcc"] = bcc
    msg.set_content("Body\n.\nwith a lone dot line\n")
    return msg


def test_send_puts_bcc_in_the_envelope_only(sandbox: Any) -> None:
    token = token_for(sandbox)
    connection = SmtpConnection(
        SmtpEndpoint("127.0.0.1", sandbox.exchange.port, use_tls=True, timeout=5)
    )
    try:
        connection.connect()
        connection.secure()
        connection.authenticate(Credentials("oauth2", SENDER, token.access_token))
        answer = connection.send(
            sender=SENDER,
            recipients=["to@elsewhere.example", "hidden@elsewhere.example"],
            message=message("to@elsewhere.example", bcc="hidden@elsewhere.example"),
        )
        assert answer.startswith("250 2.0.0 OK")
        assert connection.is_alive()
    finally:
        connection.close()
    envelope, content = sandbox.exchange.delivered[-1]
    assert envelope.rcpt_tos == ["to@elsewhere.example", "hidden@elsewhere.example"]
    received = email.message_from_bytes(content)
    assert received["Bcc"] is None and b"hidden@" not in content
    assert "\n.\nwith a lone dot line" in received.get_payload().replace("\r\n", "\n")


def test_tls_from_the_first_byte(sandbox: Any) -> None:
    server = ExchangeStandIn(
        sandbox.directory, sandbox.entra.public_key, sandbox.pki.server_context(), implicit_tls=True
    ).start()
    try:
        connection = SmtpConnection(
            SmtpEndpoint("127.0.0.1", server.port, use_tls=True, timeout=5, implicit_tls=True)
        )
        connection.connect()
        assert connection.greeting == ""  # nothing is read before TLS
        info = connection.secure()
        assert info is not None and info.mode.startswith("TLS from the first byte")
        assert connection.greeting.startswith("220 ")
        answer = connection.authenticate(
            Credentials("oauth2", SENDER, token_for(sandbox).access_token)
        )
        assert answer.startswith("235")
        connection.close()
    finally:
        server.stop()


def test_port_465_with_tls_is_implicit_tls() -> None:
    def implicit(port: int, use_tls: bool) -> bool:
        values = MailSettings(smtp_server="h", port=port, use_ssl_tls=use_tls, sender_email="a@b.c")
        return smtp_endpoint(values, timeout=1).implicit_tls

    assert implicit(465, True)
    assert not implicit(587, True)
    assert not implicit(465, False)


class GmailStyle:
    """Answers a bad token with a 334 carrying JSON, and the 535 only after an empty reply."""

    def __init__(self) -> None:
        self.second_reply: bytes | None = None

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        await server.challenge_auth("")
        self.second_reply = await server.challenge_auth(b'{"status":"400","schemes":"Bearer"}')
        await server.push("535 5.7.8 Username and Password not accepted")
        return AuthResult(success=False, handled=True)


def test_an_error_challenge_is_answered_with_an_empty_line(sandbox: Any) -> None:
    handler = GmailStyle()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=sandbox.pki.server_context()
    )
    controller.start()
    try:
        connection = SmtpConnection(SmtpEndpoint("127.0.0.1", port, use_tls=True, timeout=5))
        connection.connect()
        connection.secure()
        with pytest.raises(SmtpFailure) as failure:
            connection.authenticate(Credentials("oauth2", SENDER, "not-a-token"))
        assert failure.value.answer == "535 5.7.8 Username and Password not accepted"
        assert handler.second_reply == b""
        connection.close()
    finally:
        controller.stop()


def test_credentials_are_never_sent_without_tls(sandbox: Any) -> None:
    handler = GmailStyle()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        connection = SmtpConnection(SmtpEndpoint("127.0.0.1", port, use_tls=False, timeout=5))
        connection.connect()
        with pytest.raises(SmtpFailure) as failure:
            connection.authenticate(Credentials("oauth2", SENDER, "a-live-token"))
        assert failure.value.kind == "plaintext_auth"
        assert handler.second_reply is None  # the server never saw an AUTH
        connection.close()
    finally:
        controller.stop()


def test_the_token_endpoint_trusts_the_system_store_plus_the_extra_file(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from smtp_settings.mail import tls

    only_sandbox = tmp_path / "sandbox-ca.pem"
    only_sandbox.write_text(sandbox.pki.ca.cert_pem.bytes().decode())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(only_sandbox))
    monkeypatch.setenv("SSL_CERT_FILE", str(only_sandbox))
    context = tls.client_context()
    system = ssl.create_default_context(cafile=ssl.get_default_verify_paths().openssl_cafile)
    assert len(context.get_ca_certs()) == len(system.get_ca_certs()) + 1  # system ones kept
    oauth.forget_applications()
    assert token_for(sandbox).access_token  # and the extra CA is trusted for HTTPS


def test_token_requests_add_nothing_to_the_trust_the_console_decided(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests would name certifi's bundle (or REQUESTS_CA_BUNDLE's) for each connection
    and urllib3 load it into the shared context: other roots, and a reload every time."""
    from smtp_settings.mail import tls

    context = tls.client_context()
    loaded: list[Any] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loaded.append(args or kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    oauth.forget_applications()
    for _ in range(3):  # a fresh application, so new connections, each time
        assert token_for(sandbox, fresh=True).access_token
    assert tls.client_context() is context
    assert loaded == []
