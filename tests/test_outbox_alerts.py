"""The outbox's alerts by e-mail and to the destinations (issue 21 point 2): a hold is told
once until mail leaves again, its e-mail never arrives after the hold it announces, a
message that failed for good is e-mailed unless it is itself an alert (no loop), and a
withdrawn alert cannot be retried. Real SMTP (the sandbox's aiosmtpd Exchange stand-in) and
a local receiver for the destinations."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from post_office.models import Email

from alerting import service
from smtp_settings import outbox
from smtp_settings.links import ALERT_HEADER
from smtp_settings.mail import oauth
from smtp_settings.models import Delivery, DeliveryState
from smtp_settings.monitoring import outbox_alerts

from .alert_receiver import AlertReceiver, alert_receiver  # noqa: F401  (the fixture)
from .sandbox.world import CLIENT_SECRET, SENDER
from .test_alerting import deliver_everything
from .test_reminders import admins, configured, received  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)
HELD = "Mail is held: nothing leaves the console's outbox"
RELEASED = "Mail leaves again: the held messages were released"
FAILED = "A message failed for good and will not be sent"


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    settings.TIME_ZONE = "UTC"
    settings.SMTP_MAX_MESSAGES_PER_MINUTE = 6000


def within_one_quarter_hour() -> None:
    """Failures for good are told once per quarter hour of the clock: a test whose burst
    would straddle the turn of one waits for the next to begin."""
    group = outbox_alerts.FAILED_GROUP.total_seconds()
    left = group - time.time() % group
    if left < 30:
        time.sleep(left + 0.1)


def alert_mail(title: str) -> Any:
    return Delivery.objects.filter(email__subject=f"[SEI Administration] {title}")


def test_a_hold_is_told_once_until_mail_leaves_and_its_email_never_arrives_late(
    sandbox: Any,
    admins: list[User],  # noqa: F811
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    configured(sandbox)
    service.destination_add(label="Ops", url=alert_receiver.url("/ok/hook"))
    sandbox.app.secrets[CLIENT_SECRET] = True  # Entra refuses the secret: the outbox holds
    oauth.forget_applications()
    mail.send_mail("Invoice", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    # E-mailed to each administrator with an address, marked as an alert, and held itself.
    held = alert_mail(HELD)
    assert held.count() == 2
    assert set(held.values_list("state", flat=True)) == {DeliveryState.HELD}
    assert all(row.email.headers.get(ALERT_HEADER) == "yes" for row in held.all())
    # Where to look (the Outbox) and where to fix it (Manage SMTP).
    said = held.first().email.message
    assert reverse("smtp_settings:outbox") in said and reverse("smtp_settings:manage") in said
    deliver_everything()
    assert alert_receiver.titles() == [HELD]

    # The same wrong settings saved again, twice: each Save releases, the first attempt
    # holds again. The same hold goes on: no "released", no second "held", anywhere.
    for _ in range(2):
        configured(sandbox)
        outbox.outbox_deliver_due()
        deliver_everything()
    assert Delivery.objects.get(email__subject="Invoice").state == DeliveryState.HELD
    assert alert_receiver.titles() == [HELD]
    assert held.count() == 2  # no new "held" e-mail either
    # Released before they left: withdrawn, they never arrive after the hold's end.
    assert set(held.values_list("state", flat=True)) == {DeliveryState.FAILED}
    assert all("no longer true" in why for why in held.values_list("last_error", flat=True))

    # A new secret: the release lets mail leave, and that (not the release) is told.
    sandbox.app.secrets["renewed~Secret.Value"] = False
    configured(sandbox, client_secret="renewed~Secret.Value", secret_expiration_date="2028-06-30")
    outbox.outbox_deliver_due()
    outbox.outbox_deliver_due()
    deliver_everything()
    assert alert_receiver.titles() == [HELD, RELEASED]
    # By e-mail: the held notice never left, so its end is not e-mailed either.
    assert received(sandbox) == [("it@x.example", "Invoice")]
    assert not alert_mail(RELEASED).exists()

    # A later hold is a new one, told again (even once the sent mail has been purged).
    Delivery.objects.filter(state=DeliveryState.SENT).update(
        sent_at=timezone.now() - timedelta(days=90)
    )
    assert outbox.outbox_purge() == 1
    sandbox.app.secrets["renewed~Secret.Value"] = True
    oauth.forget_applications()
    mail.send_mail("Second", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    deliver_everything()
    assert alert_receiver.titles() == [HELD, RELEASED, HELD]
    assert held.filter(state=DeliveryState.HELD).count() == 2


def test_a_message_failed_for_good_is_emailed_and_an_alert_that_fails_raises_none(
    sandbox: Any,
    admins: list[User],  # noqa: F811
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    configured(sandbox)
    service.destination_add(label="Ops", url=alert_receiver.url("/ok/hook"))
    refused = "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found"
    sandbox.exchange.handler.recipient_answers["nobody@sandbox.example"] = refused
    # One administrator's own mailbox refuses mail too: the alert to it fails for good.
    sandbox.exchange.handler.recipient_answers["ops@sandbox.example"] = refused
    within_one_quarter_hour()
    mail.send_mail("Lost", "Body", SENDER, ["nobody@sandbox.example"])
    for _ in range(4):  # the message, its alerts, and whatever those would raise
        outbox.outbox_deliver_due()
    deliver_everything()
    assert received(sandbox) == [("boss@sandbox.example", f"[SEI Administration] {FAILED}")]
    # The alert that failed for good raised no e-mail (the message and one alert per
    # administrator, nothing more), and, failing within the same quarter hour, no second
    # alert at the destinations either.
    assert Email.objects.count() == 3
    assert alert_receiver.titles() == [FAILED]
    failed_alert = alert_mail(FAILED).get(email__to=["ops@sandbox.example"])
    assert failed_alert.state == DeliveryState.FAILED and "5.1.10" in failed_alert.last_answer


def test_a_withdrawn_alert_offers_no_retry_and_the_endpoint_refuses_it(
    admin_client: Client,
) -> None:
    mail.send_mail("[SEI Administration] Stale", "Body", None, ["boss@x.example"])
    mail.send_mail("Ordinary", "Body", None, ["it@x.example"])
    stale = Email.objects.get(subject="[SEI Administration] Stale")
    ordinary = Email.objects.get(subject="Ordinary")
    assert outbox.outbox_withdraw(subject=stale.subject, reason="Not sent: no longer true.") == 1
    admin_client.post(
        reverse("smtp_settings:outbox_action", args=[ordinary.pk]), {"action": "discard"}
    )
    page = admin_client.get(reverse("smtp_settings:outbox")).content.decode()
    rows = page.split("<tr data-state=")[1:]
    row = {subject: next(r.split("</tr>")[0] for r in rows if subject in r) for subject in
           (stale.subject, ordinary.subject)}  # fmt: skip
    assert "Retry now" not in row[stale.subject]
    assert "Retry now" in row[ordinary.subject]  # a failed message that is not withdrawn can be
    message = admin_client.get(reverse("smtp_settings:outbox_message", args=[stale.pk]))
    assert "Retry now" not in message.content.decode()
    answer = admin_client.post(
        reverse("smtp_settings:outbox_action", args=[stale.pk]), {"action": "retry"}, follow=True
    )
    assert "not an alert withdrawn as no longer true" in answer.content.decode()
    assert Delivery.objects.get(pk=stale.pk).state == DeliveryState.FAILED


def test_a_burst_of_failures_for_good_is_told_once_per_quarter_hour(
    sandbox: Any,
    admins: list[User],  # noqa: F811
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    configured(sandbox)
    service.destination_add(label="Ops", url=alert_receiver.url("/ok/hook"))
    refused = "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found"
    dead = [f"gone{number}@sandbox.example" for number in range(20)]
    for address in dead:
        sandbox.exchange.handler.recipient_answers[address] = refused
    within_one_quarter_hour()
    for address in dead:
        mail.send_mail("Newsletter", "Body", SENDER, [address])
    for _ in range(30):  # a drain takes a batch at a time
        outbox.outbox_deliver_due()
    deliver_everything()
    assert Delivery.objects.filter(state=DeliveryState.FAILED).count() == 20
    # One e-mail per administrator with an address and one alert, not twenty of each; the
    # e-mail says that the others are in the Outbox.
    told = received(sandbox)
    assert told == [("boss@sandbox.example", f"[SEI Administration] {FAILED}"),
                    ("ops@sandbox.example", f"[SEI Administration] {FAILED}")]  # fmt: skip
    assert alert_receiver.titles() == [FAILED]
    body = alert_mail(FAILED).first().email.message
    assert "gone" in body and "not told one by one" in body
