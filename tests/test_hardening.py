"""Tried as an attacker with an administrator's session would: stored credentials stay with
the endpoint they were entered for, and never cross the network in clear."""

from __future__ import annotations

import base64
import socket
import threading
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from smtp_settings.forms import SmtpSettingsForm
from smtp_settings.models import SettingsChange, SmtpSettings, ValidationRun

from .test_sending import save

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


class Listener:
    """A loopback SMTP listener that records every line it receives and answers like a
    server that takes anything, so that a client would go as far as it dares."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.lines: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection, connection.makefile("rb") as reader:
                connection.sendall(b"220 listener ESMTP\r\n")
                for line in reader:
                    self.lines.append(line)
                    if line.upper().startswith(b"EHLO"):
                        connection.sendall(b"250-listener\r\n250 AUTH LOGIN PLAIN XOAUTH2\r\n")
                    elif line.upper().startswith(b"QUIT"):
                        connection.sendall(b"221 bye\r\n")
                        break
                    else:
                        connection.sendall(b"334 \r\n")

    @property
    def received(self) -> bytes:
        raw = b"".join(self.lines)
        decoded = []
        for line in self.lines:
            try:
                decoded.append(base64.b64decode(line.strip(), validate=True))
            except ValueError:
                continue
        return raw + b"".join(decoded)

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listener() -> Any:
    found = Listener()
    yield found
    found.close()


def blank_secret(values: dict[str, str], **changes: str) -> dict[str, str]:
    return {**values, "client_secret": "", **changes}


@pytest.mark.parametrize(
    "change",
    [
        {"smtp_server": "localhost"},
        {"port": "2525"},
        {"use_ssl_tls": ""},
        {"client_id": "0f0e0d0c-0b0a-0908-0706-050403020100"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_blank_secret_does_not_follow_a_changed_endpoint(
    sandbox: Any, admin_client: Client, change: dict[str, str]
) -> None:
    save(sandbox.form_values())
    values = blank_secret(sandbox.form_values(), **change)
    saved = admin_client.post(reverse("smtp_settings:manage"), values)
    assert saved.status_code == 400
    validate = admin_client.post(reverse("smtp_settings:validate"), values, **JSON)
    assert validate.status_code == 400
    errors = validate.json()["errors"]
    assert any("again" in error["message"] for error in errors.get("client_secret", [])) or (
        "use_ssl_tls" in errors
    )
    assert not ValidationRun.objects.exists()
    assert SmtpSettings.load().port == int(sandbox.form_values()["port"])


def test_validate_against_a_listener_sends_it_no_token(
    sandbox: Any, admin_client: Client, listener: Listener, django_capture_on_commit_callbacks: Any
) -> None:
    save(sandbox.form_values())
    values = blank_secret(sandbox.form_values(), port=str(listener.port))
    response = admin_client.post(reverse("smtp_settings:validate"), values, **JSON)
    assert response.status_code == 400
    assert "Port changed" in response.json()["errors"]["client_secret"][0]["message"]
    assert b"AUTH" not in listener.received
    for token in sandbox.entra.issued_tokens:
        assert token.encode() not in listener.received


def test_the_stored_password_does_not_follow_a_changed_server(
    sandbox: Any, admin_client: Client
) -> None:
    basic = {
        **sandbox.form_values(),
        "auth_type": "basic",
        "username": "relay@sandbox.example",
        "password": "basic-password-1",
    }
    save(basic)
    for change in ({"smtp_server": "localhost"}, {"username": "other@sandbox.example"}):
        response = admin_client.post(
            reverse("smtp_settings:manage"), {**basic, "password": "", **change}
        )
        assert response.status_code == 400
        assert "Enter the password again" in response.content.decode()


def test_saving_another_server_drops_the_other_types_secret(sandbox: Any) -> None:
    save(sandbox.form_values())
    assert SmtpSettings.load().client_secret
    save(
        {
            **sandbox.form_values(),
            "auth_type": "basic",
            "username": "relay@sandbox.example",
            "password": "basic-password-1",
            "smtp_server": "localhost",
        }
    )
    stored = SmtpSettings.load()
    assert stored.client_secret is None and stored.client_secret_replaced_at is None
    change = SettingsChange.objects.first()
    assert change is not None
    assert {"field": "client_secret", "label": "Client Secret", "old": "", "new": "cleared"} in (
        change.changes
    )
    # Back to OAuth 2.0 on the new server: the old secret is not there to be sent.
    form_values = {**sandbox.form_values(), "smtp_server": "localhost", "client_secret": ""}
    form = SmtpSettingsForm(form_values, instance=SmtpSettings.load())
    assert "client_secret" in form.errors


# -- sign-in is throttled -----------------------------------------------------------------


def test_repeated_wrong_passwords_lock_the_user_out_even_with_the_right_one(
    admin_user: Any, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    from axes.models import AccessAttempt

    settings.AXES_FAILURE_LIMIT = 5
    caplog.set_level("INFO", logger="sei_admin.signin")
    client = Client()
    login = reverse("login")
    for attempt in range(5):
        response = client.post(login, {"username": "root-admin", "password": f"wrong-{attempt}"})
        assert response.status_code in (200, 429)
    right = client.post(login, {"username": "root-admin", "password": "correct horse 42"})
    assert right.status_code == 429
    assert "Too many failed sign-ins" in right.content.decode()
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.filter(username="root-admin").exists()  # failures recorded
    assert "Failed sign-in for 'root-admin'" in caplog.text  # and logged

    from django.core.management import call_command

    call_command("axes_reset_username", "root-admin")
    again = client.post(login, {"username": "root-admin", "password": "correct horse 42"})
    assert again.status_code == 302


def test_another_address_is_not_locked_out_by_someone_elses_failures(
    admin_user: Any, settings: Any
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    login = reverse("login")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for attempt in range(4):
        attacker.post(login, {"username": "root-admin", "password": f"wrong-{attempt}"})
    owner = Client(REMOTE_ADDR="198.51.100.7")
    assert (
        owner.post(login, {"username": "root-admin", "password": "correct horse 42"}).status_code
        == 302
    )


@pytest.mark.parametrize(
    "recipient", ["it@exämple.com", "ït@example.com", "it\u2028@example.com", '"a b"@example.com']
)
def test_validate_refuses_addresses_smtp_cannot_carry_as_field_errors(
    sandbox: Any, admin_client: Client, recipient: str
) -> None:
    values = {**sandbox.form_values(), "test_recipient": recipient}
    response = admin_client.post(reverse("smtp_settings:validate"), values, **JSON)
    assert response.status_code == 400
    assert "test_recipient" in response.json()["errors"]
    assert not ValidationRun.objects.exists()


# -- concurrent administrators, error pages ------------------------------------------------


def test_a_stale_tab_cannot_undo_a_newer_save(sandbox: Any, admin_client: Client) -> None:
    manage = reverse("smtp_settings:manage")
    save(sandbox.form_values())
    opened = SmtpSettings.load().version
    tab_a = {**sandbox.form_values(), "version": str(opened), "port": "2525"}
    tab_a["client_secret"] = sandbox.form_values()["client_secret"]
    assert admin_client.post(manage, tab_a).status_code == 302
    tab_b = {**sandbox.form_values(), "version": str(opened), "sender_email": "b@sandbox.example"}
    response = admin_client.post(manage, tab_b)
    assert response.status_code == 409
    page = response.content.decode()
    assert "since you opened the page" in page and "root-admin" in page
    assert 'value="b@sandbox.example"' in page  # the input is kept
    assert SmtpSettings.load().port == 2525  # tab A's change stands
    assert SmtpSettings.load().sender_email != "b@sandbox.example"
    # Saving again from the kept page is a deliberate choice, and goes through.
    again = {**tab_b, "version": str(SmtpSettings.load().version), "port": "2525"}
    assert admin_client.post(manage, again).status_code == 302


def test_the_debug_error_page_shows_no_secret(
    sandbox: Any, admin_client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smtp_settings import services

    settings.DEBUG = True

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services.SettingsChange.objects, "create", broken)
    admin_client.raise_request_exception = False
    # Built at run time: the debug page quotes this test's source lines around the call.
    secret = "-".join(["a-very~secret", "Value", "42"])
    values = {**sandbox.form_values(), "client_secret": secret}
    response = admin_client.post(reverse("smtp_settings:manage"), values)
    assert response.status_code == 500
    page = response.content.decode()
    assert "the database went away" in page  # it is the debug page
    assert secret not in page


@pytest.mark.django_db(transaction=True)
def test_twelve_saves_at_once_all_succeed(sandbox: Any, admin_user: Any) -> None:
    save(sandbox.form_values())
    clients = []
    for _ in range(12):
        client = Client()
        client.force_login(admin_user)
        clients.append(client)
    statuses: list[int] = []
    start = threading.Barrier(12)

    def post(client: Client, port: int) -> None:
        from django.db import connection

        start.wait()
        try:
            values = {**sandbox.form_values(), "port": str(port)}
            statuses.append(client.post(reverse("smtp_settings:manage"), values).status_code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=post, args=(client, 2500 + n)) for n, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [302] * 12
    assert SettingsChange.objects.count() == 13


# -- a wrong encryption key -------------------------------------------------------------------


def test_a_wrong_key_keeps_the_pages_up_holds_mail_and_lets_the_secret_be_entered_again(
    sandbox: Any, admin_client: Client, settings: Any
) -> None:
    from cryptography.fernet import Fernet
    from django.core import mail

    from smtp_settings import outbox
    from smtp_settings.models import Delivery, DeliveryState

    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    save(sandbox.form_values())
    settings.SEI_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # not the one it was saved with
    for route in ("home", "administration", "smtp_settings:manage", "smtp_settings:outbox"):
        assert admin_client.get(reverse(route)).status_code == 200, route
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert "no key in SEI_ENCRYPTION_KEYS decrypts it" in page
    assert 'id="banner-secret-unreadable"' in page

    mail.send_mail("Waiting", "Body", "a@b.example", ["it@x.example"])
    outbox.outbox_deliver_due()
    held = Delivery.objects.get(email__subject="Waiting")
    assert held.state == DeliveryState.HELD and "cannot be decrypted" in held.last_error

    blank = admin_client.post(reverse("smtp_settings:manage"), blank_secret(sandbox.form_values()))
    assert blank.status_code == 400 and "enter it again" in blank.content.decode()
    typed = admin_client.post(reverse("smtp_settings:manage"), sandbox.form_values())
    assert typed.status_code == 302
    assert SmtpSettings.load().client_secret == sandbox.form_values()["client_secret"]
    outbox.outbox_deliver_due()
    assert Delivery.objects.get(email__subject="Waiting").state == DeliveryState.SENT


def test_users_without_the_permission_do_not_see_the_server_on_home(
    sandbox: Any, plain_user: Any
) -> None:
    save(sandbox.form_values())
    client = Client()
    client.force_login(plain_user)
    page = client.get(reverse("home")).content.decode()
    assert "Outgoing mail is configured" in page
    assert sandbox.form_values()["sender_email"] not in page
    assert f":{sandbox.form_values()['port']}" not in page


# -- findings of an attacker's session ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_save_between_the_form_check_and_the_run_cannot_hand_the_secret_over(
    sandbox: Any, admin_user: Any, listener: Listener
) -> None:
    from smtp_settings import validation

    # The page was checked against settings pointing at the listener, with a junk secret.
    save({**sandbox.form_values(), "port": str(listener.port), "client_secret": "junk"})
    form = SmtpSettingsForm(
        blank_secret(sandbox.form_values(), port=str(listener.port)),
        instance=SmtpSettings.load(),
    )
    assert form.is_valid(), form.errors
    # Before the run starts, another administrator saves the real secret for the real server.
    save(sandbox.form_values())
    with pytest.raises(validation.ValidationNotStarted, match="enter the secret again"):
        validation.validation_run_start(values=form.cleaned_data, user=admin_user)
    assert not ValidationRun.objects.exists()
    assert b"AUTH" not in listener.received


def test_a_save_between_the_form_check_and_the_write_keeps_the_secret_home(
    sandbox: Any, admin_user: Any
) -> None:
    from smtp_settings import services

    save({**sandbox.form_values(), "smtp_server": "localhost", "client_secret": "junk"})
    form = SmtpSettingsForm(
        blank_secret(sandbox.form_values(), smtp_server="localhost"), instance=SmtpSettings.load()
    )
    assert form.is_valid(), form.errors
    save(sandbox.form_values())  # the real secret, for 127.0.0.1, saved meanwhile
    with pytest.raises(services.StaleSettings):
        services.smtp_settings_save(values=form.cleaned_data, user=admin_user)
    stored = SmtpSettings.load()
    assert stored.smtp_server == "127.0.0.1"
    assert stored.client_secret == sandbox.form_values()["client_secret"]


def test_csp_reports_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    import json

    from django.core.cache import cache

    cache.clear()
    caplog.set_level("WARNING", logger="sei_admin.csp")
    forged = "script-src\nINFO sei_admin.signin Signed in: 'admin' from 10.0.0.1"
    Client().post(
        reverse("csp_report"),
        json.dumps({"csp-report": {"violated-directive": forged, "blocked-uri": "inline"}}),
        content_type="application/csp-report",
    )
    assert "\n" not in caplog.records[-1].getMessage()


def test_run_health_check_now_asks_at_most_once_a_minute(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    from django.core.cache import cache

    cache.clear()
    with django_capture_on_commit_callbacks() as callbacks:
        for _ in range(5):
            admin_client.post(reverse("smtp_settings:health_check"))
    assert len(callbacks) == 1
