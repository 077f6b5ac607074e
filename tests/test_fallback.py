"""The fallback connection (issue 20 point 6): primary SMTP with an expired secret, fallback
Microsoft Graph with an app of its own; the outbox delivers through the fallback, records
which connection sent each message, says so once, and the primary takes over again."""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from activity.models import Entry, Kind
from alerting.models import Alert
from smtp_settings import outbox, services
from smtp_settings.credentials.model import Credential
from smtp_settings.forms import SmtpSettingsForm
from smtp_settings.mail import oauth
from smtp_settings.models import Delivery, DeliveryState, SmtpSettings

from .sandbox.directory import GRAPH_RESOURCE
from .sandbox.world import CLIENT_SECRET, SENDER

pytestmark = pytest.mark.django_db

FALLBACK_APP = "6a4e0c52-91d3-4f7b-8e1a-5a9d1e0000f2"
FALLBACK_SECRET = "sandbox~Fallback.Secret-0002"


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    # The fallback keeps to the rate limit too (tests/test_fallback_limits.py): 50 messages
    # at Exchange's 30 a minute would take 100 s.
    settings.SMTP_MAX_MESSAGES_PER_MINUTE = 6000


def save_primary(values: dict[str, Any]) -> SmtpSettings:
    form = SmtpSettingsForm(values, instance=SmtpSettings.load())
    assert form.is_valid(), form.errors
    return services.smtp_settings_save(values=form.cleaned_data, user=None)


def save_fallback_graph(sandbox: Any, *, sender: str = SENDER) -> SmtpSettings:
    """A second connection: Graph, with its own app (the primary's secret has expired)."""
    app = sandbox.tenant.add_app(FALLBACK_APP, FALLBACK_SECRET)
    app.roles[GRAPH_RESOURCE] = ["Mail.Send"]
    row = SmtpSettings.load_fallback()
    row.transport, row.graph_host, row.sender_email = "graph", sandbox.graph.host, sender
    row.auth_type, row.client_id, row.client_secret = "oauth2", FALLBACK_APP, FALLBACK_SECRET
    row.token_endpoint = sandbox.form_values()["token_endpoint"]
    row.save()
    return row


def test_fifty_messages_go_through_the_fallback_while_the_primary_secret_has_expired(
    sandbox: Any, settings: Any, admin_client: Client
) -> None:
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    save_primary(sandbox.form_values())
    save_fallback_graph(sandbox)
    sandbox.app.secrets[CLIENT_SECRET] = True  # the primary's secret expired
    oauth.forget_applications()
    for n in range(50):
        mail.send_mail(f"Fallback {n}", "Body", SENDER, [f"to{n}@x.example"])
    while Delivery.objects.filter(state__in=Delivery.PENDING).exists():
        outbox.outbox_deliver_due()

    assert sorted(str(m["Subject"]) for m in _delivered(sandbox)) == sorted(
        f"Fallback {n}" for n in range(50)
    )
    rows = Delivery.objects.all()
    assert {(row.state, row.connection) for row in rows} == {(DeliveryState.SENT, "fallback")}
    assert all(row.diagnosis == "aadsts_secret_expired" for row in rows)
    assert len(sandbox.graph.requests) == 50
    # Said once: one alert for the episode, and the banner names the primary's failure.
    assert Alert.objects.filter(kind="outbox.fallback").count() == 1
    said = Entry.objects.filter(kind=Kind.OUTBOX_FALLBACK)
    assert said.count() == 1 and "the primary cannot deliver" in said.get().summary
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert "Mail is sent through the fallback since" in page
    assert "The client secret has expired (AADSTS7000222)" in page

    # A new secret saved for the primary: it takes over again.
    sandbox.app.add_secret("sandbox~New.Secret-0003")
    save_primary({**sandbox.form_values(), "client_secret": "sandbox~New.Secret-0003"})
    mail.send_mail("Primary again", "Body", SENDER, ["back@x.example"])
    outbox.outbox_deliver_due()
    again = Delivery.objects.get(email__subject="Primary again")
    assert (again.state, again.connection) == (DeliveryState.SENT, "primary")
    assert len(sandbox.graph.requests) == 50  # nothing more through Graph
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert "sent through the fallback since" not in page


def test_without_a_fallback_the_primary_holds_as_before(sandbox: Any) -> None:
    save_primary(sandbox.form_values())
    sandbox.app.secrets[CLIENT_SECRET] = True
    oauth.forget_applications()
    mail.send_mail("Held", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    assert Delivery.objects.get().state == DeliveryState.HELD


def test_when_the_fallback_fails_too_both_failures_are_named(sandbox: Any, settings: Any) -> None:
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    save_primary(sandbox.form_values())
    save_fallback_graph(sandbox)
    sandbox.tenant.apps[FALLBACK_APP].roles[GRAPH_RESOURCE] = []  # no Mail.Send
    sandbox.app.secrets[CLIENT_SECRET] = True
    oauth.forget_applications()
    mail.send_mail("Nowhere", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    held = Delivery.objects.get()
    assert held.state == DeliveryState.HELD and held.diagnosis == "aadsts_secret_expired"
    assert "The fallback connection failed too" in held.last_error
    assert "ErrorAccessDenied" in held.last_error


def _delivered(sandbox: Any) -> list[Any]:
    return [
        email.message_from_bytes(content, policy=email.policy.default)
        for _, content in sandbox.exchange.delivered
    ]


def test_the_fallback_page_saves_validates_with_its_own_secret_and_removes(
    sandbox: Any, settings: Any, admin_client: Client
) -> None:
    from smtp_settings import validation
    from smtp_settings.models import ValidationRun

    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    primary = save_primary(sandbox.form_values())
    app = sandbox.tenant.add_app(FALLBACK_APP, FALLBACK_SECRET)
    app.roles[GRAPH_RESOURCE] = ["Mail.Send"]
    url = reverse("smtp_settings:fallback")
    assert "No fallback connection is saved" in admin_client.get(url).content.decode()
    values = {
        **sandbox.form_values(),
        "transport": "graph",
        "graph_host": sandbox.graph.host,
        "client_id": FALLBACK_APP,
        "client_secret": FALLBACK_SECRET,
    }
    for name in ("smtp_server", "port", "use_ssl_tls"):
        values.pop(name)
    assert admin_client.post(url, values).status_code == 302
    saved = SmtpSettings.load_fallback()
    assert (saved.pk, saved.transport, saved.client_id) == (2, "graph", FALLBACK_APP)
    assert SmtpSettings.load().client_id == primary.client_id  # the primary is untouched
    # Its secret is the fallback row's own: the primary's credential in use is still the
    # primary's secret, and the Credentials section lists the primary's only.
    assert SmtpSettings.load().client_secret == sandbox.form_values()["client_secret"]
    assert SmtpSettings.load_fallback().client_secret == FALLBACK_SECRET
    assert [c.connection for c in Credential.objects.all()] == [1]
    page = admin_client.get(url).content.decode()
    assert FALLBACK_SECRET not in page and "A fallback connection is saved" in page

    # Validate with the secret left blank: the fallback's stored one, not the primary's.
    blank = {**values, "client_secret": "", "connection": "fallback", "test_recipient": ""}
    started = admin_client.post(
        reverse("smtp_settings:validate"), blank, HTTP_ACCEPT="application/json"
    )
    assert started.status_code == 202, started.content
    run = ValidationRun.objects.get(pk=started.json()["run"])
    validation.validation_run_execute(run_id=str(run.pk))
    result = validation.validation_run_as_dict(run=ValidationRun.objects.get(pk=run.pk))
    assert [step["key"] for step in result["steps"]] == ["token", "token_contents", "send"]
    assert result["status"] == "passed"

    assert admin_client.post(url, {"action": "remove"}).status_code == 302
    assert not SmtpSettings.objects.filter(pk=SmtpSettings.FALLBACK_PK).exists()
    assert SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).exists()
    assert not Credential.of_every_connection.filter(connection=2).exists()
    assert SmtpSettings.load().client_secret == sandbox.form_values()["client_secret"]


def test_a_fallback_that_would_fail_is_told_once_before_it_is_needed(
    sandbox: Any, settings: Any, admin_client: Client
) -> None:
    """Either connection failing alone is never silent: the health check also checks the
    fallback's token, tells once when it starts failing and once when it passes again."""
    from smtp_settings.monitoring.fallback_check import fallback_health_check_run

    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    save_primary({**sandbox.form_values(), "alert_recipients": "it@example.com"})
    save_fallback_graph(sandbox)
    sandbox.tenant.apps[FALLBACK_APP].secrets[FALLBACK_SECRET] = True  # its secret expired

    assert fallback_health_check_run() is False
    assert fallback_health_check_run() is False  # still failing: told once
    failed = [m for m in mail.outbox if "fallback connection would fail" in m.subject]
    recipients = [address for message in failed for address in message.to]
    assert "it@example.com" in recipients and len(recipients) == len(set(recipients))
    assert "AADSTS7000222" in failed[0].body
    assert Alert.objects.filter(kind="fallback.failed").count() == 1
    page = admin_client.get(reverse("smtp_settings:fallback")).content.decode()
    assert "failed." in page and FALLBACK_SECRET not in page

    sandbox.tenant.apps[FALLBACK_APP].secrets[FALLBACK_SECRET] = False
    assert fallback_health_check_run() is True
    assert Alert.objects.filter(kind="fallback.recovered").count() == 1
    assert [m.subject for m in mail.outbox if "works again" in m.subject]
    assert SmtpSettings.load().check_ok is None  # the primary's are MailHealthCheck rows


def test_an_expired_secret_with_a_fallback_saved_does_not_say_no_mail_goes_out(
    sandbox: Any, settings: Any, admin_client: Client
) -> None:
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    save_primary({**sandbox.form_values(), "secret_expiration_date": "2020-01-31"})
    page = admin_client.get(reverse("administration")).content.decode()
    assert "so no mail goes out" in page
    save_fallback_graph(sandbox)
    page = admin_client.get(reverse("administration")).content.decode()
    assert "so no mail goes out" not in page
    assert "mail goes through the fallback connection while that works" in page
