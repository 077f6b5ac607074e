"""Sending: Django's mail goes to the outbox, and the outbox delivers it through the saved
Manage SMTP settings to the sandbox's Exchange stand-in, over real sockets."""

from __future__ import annotations

import email
import email.policy
import socket
from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from smtp_settings import outbox, services
from smtp_settings.forms import SmtpSettingsForm
from smtp_settings.mail import oauth
from smtp_settings.mail.backend import EmailBackend
from smtp_settings.mail.endpoint import MailSettings
from smtp_settings.mail.errors import CredentialFailure, MessageRefused
from smtp_settings.models import Delivery, DeliveryState, MailboxLease, SmtpSettings

from .sandbox.world import CLIENT_SECRET, SENDER, TENANT_DOMAIN

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    # pytest-django swaps in Django's test backend; these tests use the console's own.
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


def save(values: dict[str, Any]) -> SmtpSettings:
    form = SmtpSettingsForm(values, instance=SmtpSettings.load())
    assert form.is_valid(), form.errors
    return services.smtp_settings_save(values=form.cleaned_data, user=None)


def delivered(sandbox: Any) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(content, policy=email.policy.default)
        for _, content in sandbox.exchange.delivered
    ]


def states() -> list[str]:
    """The states of the messages the test sent: the console's own alerts to administrators
    (a hold's, a failure's) have tests of their own (tests/test_outbox_alerts.py)."""
    ours = Delivery.objects.exclude(email__subject__startswith="[SEI Administration]")
    return list(ours.order_by("pk").values_list("state", flat=True))


def settings_for(sandbox: Any, **changes: Any) -> MailSettings:
    values = {**sandbox.form_values(), "port": sandbox.exchange.port, **changes}
    return MailSettings.from_values(values, secret=values["client_secret"])


# -- the path every e-mail takes ------------------------------------------------------------


def test_send_mail_is_queued_then_delivered_with_xoauth2(sandbox: Any) -> None:
    save(sandbox.form_values())
    sent = mail.send_mail("Hello", "Body text {{ kept }}", "app@anywhere.example", ["it@x.example"])
    assert sent == 1
    assert states() == [DeliveryState.QUEUED]
    assert sandbox.exchange.delivered == []  # nothing leaves before a worker delivers

    report = outbox.outbox_deliver_due()

    assert report["sent"] == 1
    assert states() == [DeliveryState.SENT]
    (message,) = delivered(sandbox)
    envelope = sandbox.exchange.delivered[0][0]
    assert envelope.mail_from == SENDER
    assert message["From"] == SENDER  # Use sender email on: Sender Email is the From
    assert message["Reply-To"] == "app@anywhere.example"
    assert "{{ kept }}" in message.get_content()  # the body is not treated as a template


def test_sendtestemail_goes_out_through_manage_smtp(sandbox: Any) -> None:
    save(sandbox.form_values())
    said = StringIO()
    call_command("sendtestemail", "someone@elsewhere.example", stdout=said)
    assert said.getvalue() == (
        "Queued a test message for 1 recipient: someone@elsewhere.example. The worker delivers "
        "it with Manage SMTP's saved settings; watch it in Administration > Manage SMTP > "
        f"Outbox: {django_settings.SEI_CONSOLE_URL.rstrip('/')}/administration/smtp/outbox/\n"
    )
    outbox.outbox_deliver_due()
    (message,) = delivered(sandbox)
    assert message["To"] == "someone@elsewhere.example"
    assert message["From"] == SENDER


def test_use_sender_email_off_sends_as_each_mailbox_of_the_organisation(sandbox: Any) -> None:
    alice = sandbox.tenant.add_mailbox(f"alice@{TENANT_DOMAIN}", full_access_for=sandbox.app)
    save({**sandbox.form_values(), "use_sender_email": ""})
    mail.send_mail("From Alice", "Hi", alice.address, ["it@x.example"])
    mail.send_mail("From outside", "Hi", "mallory@evil.example", ["it@x.example"])
    outbox.outbox_deliver_due()

    (message,) = delivered(sandbox)
    assert message["From"] == alice.address
    assert sandbox.exchange.delivered[0][0].mail_from == alice.address
    refused = Delivery.objects.get(email__subject="From outside")
    assert refused.state == DeliveryState.FAILED
    assert "outside the organisation" in refused.last_error


def test_use_sender_email_off_and_a_mailbox_without_permission_fails_only_its_mail(
    sandbox: Any,
) -> None:
    sandbox.tenant.add_mailbox(f"bob@{TENANT_DOMAIN}")  # no FullAccess for the app
    save({**sandbox.form_values(), "use_sender_email": ""})
    mail.send_mail("From Bob", "Hi", f"bob@{TENANT_DOMAIN}", ["it@x.example"])
    mail.send_mail("From the sender", "Hi", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()

    bob = Delivery.objects.get(email__subject="From Bob")
    assert bob.state == DeliveryState.FAILED
    # The token it signed in with carried SMTP.SendAsApp: one cause, the mailbox permission,
    # with the Object ID the token named.
    assert bob.diagnosis == "auth_mailbox_permission"
    assert "consent is in place" in bob.cause and "admin consent" not in bob.fix.lower()
    assert sandbox.app.service_principal_id in bob.fix
    assert bob.cause and bob.fix
    assert Delivery.objects.get(email__subject="From the sender").state == DeliveryState.SENT


# -- the backend itself -------------------------------------------------------------------


def test_a_hundred_messages_use_one_connection_and_one_token(sandbox: Any) -> None:
    backend = EmailBackend(mail_settings=settings_for(sandbox))
    messages = [
        mail.EmailMessage(f"Message {n}", "Body", "x@y.example", [f"r{n}@elsewhere.example"])
        for n in range(100)
    ]
    assert backend.send_messages(messages) == 100
    assert sandbox.entra.token_requests == 1
    assert sandbox.exchange.handler.authenticated_sessions == 1
    assert len(sandbox.exchange.delivered) == 100


def test_the_backend_keeps_djangos_contract(sandbox: Any) -> None:
    backend = EmailBackend(mail_settings=settings_for(sandbox))
    message = mail.EmailMessage("Hi", "Body", "app@anywhere.example", ["it@x.example"])
    assert backend.open() is True
    assert backend.open() is False
    assert backend.send_messages([message]) == 1
    assert backend.has_session(SENDER)  # opened by the caller: send_messages left it open
    backend.close()
    assert message.from_email == "app@anywhere.example"  # the caller's message is untouched
    assert "Message-ID" not in message.extra_headers
    assert backend.send_messages([]) == 0


def test_a_dropped_session_is_noticed_before_reuse(sandbox: Any) -> None:
    backend = EmailBackend(mail_settings=settings_for(sandbox))
    backend.open()
    session = backend.transport._sessions[SENDER]
    session.connection._smtp.sock.shutdown(socket.SHUT_RDWR)  # the link dropped while idle
    session.used_at -= 60
    message = mail.EmailMessage("Hi", "Body", "a@b.example", ["it@x.example"])
    assert backend.send_messages([message]) == 1
    backend.close()
    assert sandbox.exchange.handler.authenticated_sessions == 2


def test_fail_silently_and_failures_as_one_hierarchy(sandbox: Any) -> None:
    wrong = settings_for(sandbox, client_secret="not-the-secret")
    message = mail.EmailMessage("Hi", "Body", "a@b.example", ["it@x.example"])
    assert EmailBackend(mail_settings=wrong, fail_silently=True).send_messages([message]) == 0
    with pytest.raises(CredentialFailure) as failure:
        EmailBackend(mail_settings=wrong).send_messages([message])
    assert failure.value.stage == "token" and 7000215 in failure.value.codes
    sandbox.exchange.handler.recipient_answers["nobody@sandbox.example"] = (
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found"
    )
    with pytest.raises(MessageRefused):
        EmailBackend(mail_settings=settings_for(sandbox)).send_messages(
            [mail.EmailMessage("Hi", "Body", "a@b.example", ["nobody@sandbox.example"])]
        )


def test_a_cached_token_refused_with_535_is_replaced_once(sandbox: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    message = mail.EmailMessage("Hi", "Body", "a@b.example", ["it@x.example"])
    assert EmailBackend(mail_settings=settings_for(sandbox)).send_messages([message]) == 1
    # Entra rolls its signing key: Exchange refuses the cached token, a new one passes.
    sandbox.entra.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sandbox.exchange.handler.public_key = sandbox.entra.key.public_key()
    assert EmailBackend(mail_settings=settings_for(sandbox)).send_messages([message]) == 1
    assert sandbox.entra.token_requests == 2
    assert len(sandbox.exchange.delivered) == 2


def test_the_engine_sends_only_with_settings_it_is_given(sandbox: Any) -> None:
    save(sandbox.form_values())
    message = mail.EmailMessage("Hi", "Body", SENDER, ["it@x.example"])
    with pytest.raises(ImproperlyConfigured):
        EmailBackend().send_messages([message])
    assert sandbox.exchange.delivered == []


def test_send_mail_through_the_saved_settings_backend_sends_at_once(
    sandbox: Any, settings: Any
) -> None:
    # The EMAIL_BACKEND an operator may name to send without the outbox: the saved settings,
    # read again at each open, so a Save takes effect at the next message.
    settings.EMAIL_BACKEND = "smtp_settings.sending.SavedSettingsEmailBackend"
    with pytest.raises(CredentialFailure):
        mail.send_mail("Hi", "Body", SENDER, ["it@x.example"])
    assert mail.send_mail("Hi", "Body", SENDER, ["it@x.example"], fail_silently=True) == 0
    save(sandbox.form_values())
    assert mail.send_mail("Hi", "Body", SENDER, ["it@x.example"]) == 1
    assert [m["Subject"] for m in delivered(sandbox)] == ["Hi"]


# -- temporary, permanent and credential failures in the outbox ----------------------------


def test_temporary_answers_defer_then_the_message_goes(sandbox: Any, settings: Any) -> None:
    settings.SMTP_OUTBOX_RETRY_SECONDS = 0  # due again at once: no sleeping in tests
    save(sandbox.form_values())
    sandbox.exchange.handler.scripted = {
        "AUTH": ["432 4.3.2 Concurrent connections limit exceeded."],
        "DATA": ["451 4.7.500 Server busy. Please try again later."],
    }
    mail.send_mail("Patience", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()

    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.SENT
    assert delivery.attempts == 3
    logs = list(delivery.email.logs.order_by("pk").values_list("exception_type", "message"))
    assert [kind.split(":")[0] for kind, _ in logs] == ["deferred", "deferred", ""]
    assert logs[0][1].startswith("432 4.3.2") and logs[1][1].startswith("451 4.7.500")
    # The message's page says what each attempt led to in words, newest first.
    results = [attempt["result"] for attempt in outbox.outbox_attempts(email=delivery.email)]
    assert results == ["Sent", "Deferred: to be tried again", "Deferred: to be tried again"]


def test_a_refused_recipient_fails_that_message_only(sandbox: Any) -> None:
    save(sandbox.form_values())
    sandbox.exchange.handler.recipient_answers["nobody@sandbox.example"] = (
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found"
    )
    mail.send_mail("Lost", "Body", SENDER, ["nobody@sandbox.example"])
    mail.send_mail("Fine", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    assert Delivery.objects.get(email__subject="Lost").state == DeliveryState.FAILED
    assert Delivery.objects.get(email__subject="Fine").state == DeliveryState.SENT


def test_an_expired_secret_holds_mail_until_a_working_secret_is_saved(
    sandbox: Any, admin_client: Client
) -> None:
    save(sandbox.form_values())
    sandbox.app.secrets[CLIENT_SECRET] = True  # expired at Entra: AADSTS7000222
    oauth.forget_applications()
    for n in range(3):
        mail.send_mail(f"Waiting {n}", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()

    assert states() == [DeliveryState.HELD] * 3
    assert sandbox.entra.token_requests == 1  # one try, not one per message
    held = Delivery.objects.first()
    assert held is not None and held.diagnosis == "aadsts_secret_expired"
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    # The three, and the hold's own alert to the signed-in administrator, held with them.
    assert "4 messages held" in page and "expired" in page
    mail.send_mail("Later", "Body", SENDER, ["it@x.example"])  # joins the held ones
    assert states()[-1] == DeliveryState.HELD

    sandbox.app.secrets["a-fresh~Secret.Value"] = False
    save({**sandbox.form_values(), "client_secret": "a-fresh~Secret.Value"})
    assert states() == [DeliveryState.QUEUED] * 4
    outbox.outbox_deliver_due()
    assert states() == [DeliveryState.SENT] * 4
    assert len(sandbox.exchange.delivered) == 4
    assert "messages held" not in admin_client.get(reverse("smtp_settings:manage")).content.decode()


def test_nothing_saved_yet_holds_mail(db: Any) -> None:
    mail.send_mail("Early", "Body", "a@b.example", ["it@x.example"])
    outbox.outbox_deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.HELD
    assert "no saved settings" in delivery.last_error


# -- Exchange's limits --------------------------------------------------------------------


def test_the_rate_limit_is_never_exceeded(sandbox: Any, settings: Any) -> None:
    settings.SMTP_MAX_MESSAGES_PER_MINUTE = 600  # 10 a second, so the test takes 6 s
    save(sandbox.form_values())
    for n in range(60):
        mail.send_mail(f"Burst {n}", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()

    times = sandbox.exchange.handler.received_at
    assert len(times) == 60
    # Any 11 consecutive messages span at least a second: at most 10 in any second. The
    # stand-in stamps arrivals from a thread of this busy process, so a stamp can come up
    # to ~0.15 s late; without the limit the 11 would arrive within a few milliseconds.
    spans = [times[i + 10] - times[i] for i in range(len(times) - 10)]
    assert min(spans) >= 0.85, min(spans)
    assert times[-1] - times[0] >= 5.9 - 0.15  # and the whole burst took its 5.9 s


def test_a_mailbox_with_every_connection_taken_waits(
    sandbox: Any, settings: Any, admin_client: Client
) -> None:
    settings.SMTP_MAX_CONNECTIONS = 1
    save(sandbox.form_values())
    from django.utils import timezone

    other = MailboxLease.objects.create(
        mailbox=SENDER,
        holder="another-worker",
        expires_at=timezone.now() + timezone.timedelta(minutes=1),
    )
    mail.send_mail("Wait", "Body", SENDER, ["it@x.example"])
    report = outbox.outbox_deliver_due(budget_seconds=1)
    assert report["postponed"] == 1 and sandbox.exchange.delivered == []
    assert states() == [DeliveryState.QUEUED]
    # The pages say why a message never tried waits, and until when.
    waiting = Delivery.objects.get()
    listed = admin_client.get(reverse("smtp_settings:outbox")).content.decode()
    row = listed[listed.index('data-label="Status"') :][:600]
    assert "0 attempts" in row and "its mailbox's limit" in row, row
    page = admin_client.get(
        reverse("smtp_settings:outbox_message", args=[waiting.pk])
    ).content.decode()
    assert f'id="message-next-try"><time datetime="{waiting.next_attempt_at.isoformat()}' in page
    assert "not tried yet, it waits for its mailbox's limits" in page
    other.delete()
    Delivery.objects.update(next_attempt_at=timezone.now())
    outbox.outbox_deliver_due()
    assert states() == [DeliveryState.SENT]
    assert not MailboxLease.objects.exists()  # released when the run ended


def test_post_office_send_queued_mail_cannot_send_around_the_outbox(
    sandbox: Any, settings: Any
) -> None:
    # A message the outbox keeps waiting (every connection of the mailbox is taken) still
    # has post_office's status "queued": post_office's own command would send it at once.
    settings.SMTP_MAX_CONNECTIONS = 1
    save(sandbox.form_values())
    from django.utils import timezone

    MailboxLease.objects.create(
        mailbox=SENDER,
        holder="another-worker",
        expires_at=timezone.now() + timezone.timedelta(minutes=1),
    )
    mail.send_mail("Wait", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due(budget_seconds=1)
    assert states() == [DeliveryState.QUEUED]

    with pytest.raises(CommandError, match=r"switched off .* Celery worker delivers the outbox"):
        call_command("send_queued_mail", "--processes", "1")
    assert sandbox.exchange.delivered == []
    assert states() == [DeliveryState.QUEUED]


# -- the Outbox page ------------------------------------------------------------------------


def test_the_outbox_page_lists_counts_and_acts(sandbox: Any, admin_client: Client) -> None:
    save(sandbox.form_values())
    sandbox.exchange.handler.recipient_answers["nobody@sandbox.example"] = "550 5.1.10 Not found"
    mail.send_mail("Lost", "Secret-free body", SENDER, ["nobody@sandbox.example"])
    mail.send_mail("Fine", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()

    page = admin_client.get(reverse("smtp_settings:outbox")).content.decode()
    # Sent: "Fine", and the failure's alert to the signed-in administrator.
    assert "Sent (24 h): <strong>2</strong>" in page and "Failed: <strong>1</strong>" in page
    assert "550 5.1.10 Not found" in page
    lost = Delivery.objects.get(email__subject="Lost")
    detail = admin_client.get(reverse("smtp_settings:outbox_message", args=[lost.pk]))
    assert "Secret-free body" in detail.content.decode()
    fine = Delivery.objects.get(email__subject="Fine")
    sent = admin_client.get(reverse("smtp_settings:outbox_message", args=[fine.pk])).content
    # Which way it left, named as the fallback's is.
    route = f"the primary connection: SMTP 127.0.0.1:{sandbox.exchange.port} as {SENDER}"
    assert route in sent.decode()

    action = reverse("smtp_settings:outbox_action", args=[lost.pk])
    admin_client.post(action, {"action": "retry"})
    assert Delivery.objects.get(pk=lost.pk).state == DeliveryState.QUEUED
    admin_client.post(action, {"action": "discard"})
    lost.refresh_from_db()
    assert lost.state == DeliveryState.FAILED and "Discarded by root-admin" in lost.last_error


def test_the_outbox_pages_by_id_and_counts_a_day_of_sent_mail(
    sandbox: Any, admin_client: Client
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    save(sandbox.form_values())
    for number in range(7):
        mail.send_mail(f"Message {number}", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    # Two of them went out two days ago: no longer in the sent count, still in the list.
    oldest = list(Delivery.objects.order_by("pk").values_list("pk", flat=True)[:2])
    Delivery.objects.filter(pk__in=oldest).update(sent_at=timezone.now() - timedelta(days=2))
    assert outbox.outbox_counts()[DeliveryState.SENT] == 5

    url = reverse("smtp_settings:outbox")
    first, older = outbox.outbox_page(size=3)
    assert [e.subject for e in first] == ["Message 6", "Message 5", "Message 4"]
    page = admin_client.get(url, {"before": older}).content.decode()
    assert "Message 3" in page and "Message 1" in page and "Message 4" not in page
    assert "Newest</a>" in page
    last, none_older = outbox.outbox_page(before=oldest[1], size=3)
    assert [e.subject for e in last] == ["Message 0"] and none_older is None
    # A page number or nonsense from an old bookmark shows the newest page.
    assert "Message 6" in admin_client.get(url, {"before": "x'--"}).content.decode()


def test_the_outbox_is_for_administrators_only(plain_user: Any, sandbox: Any) -> None:
    save(sandbox.form_values())
    mail.send_mail("Private", "Body", SENDER, ["it@x.example"])
    pk = Delivery.objects.get().pk
    client = Client()
    client.force_login(plain_user)
    assert client.get(reverse("smtp_settings:outbox")).status_code == 403
    assert client.get(reverse("smtp_settings:outbox_message", args=[pk])).status_code == 403
    action = reverse("smtp_settings:outbox_action", args=[pk])
    assert client.post(action, {"action": "discard"}).status_code == 403
    assert Delivery.objects.get().state == DeliveryState.QUEUED


def test_old_sent_messages_are_purged(sandbox: Any, settings: Any) -> None:
    from django.utils import timezone

    save(sandbox.form_values())
    mail.send_mail("Old", "Body", SENDER, ["it@x.example"])
    mail.send_mail("Held back", "Body", SENDER, ["nobody@sandbox.example"])
    sandbox.exchange.handler.recipient_answers["nobody@sandbox.example"] = "550 5.1.10 Not found"
    outbox.outbox_deliver_due()
    Delivery.objects.update(sent_at=timezone.now() - timezone.timedelta(days=31))
    assert outbox.outbox_purge() == 1
    assert list(Delivery.objects.values_list("email__subject", flat=True)) == ["Held back"]


def test_retry_now_on_a_held_message_tries_the_held_ones_again(
    sandbox: Any, admin_client: Client
) -> None:
    save(sandbox.form_values())
    sandbox.app.secrets[CLIENT_SECRET] = True
    oauth.forget_applications()
    for n in range(2):
        mail.send_mail(f"Held {n}", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    assert states() == [DeliveryState.HELD] * 2
    sandbox.app.secrets[CLIENT_SECRET] = False  # fixed in Entra without a change here
    oauth.forget_applications()
    first = Delivery.objects.filter(email__subject="Held 0").first()
    assert first is not None
    admin_client.post(reverse("smtp_settings:outbox_action", args=[first.pk]), {"action": "retry"})
    assert states() == [DeliveryState.QUEUED] * 2
    outbox.outbox_deliver_due()
    assert states() == [DeliveryState.SENT] * 2


def test_mail_admins_goes_out_through_manage_smtp(sandbox: Any, settings: Any) -> None:
    settings.ADMINS = [("ops@elsewhere.example", "ops@elsewhere.example")]
    save(sandbox.form_values())
    mail.mail_admins("Disk almost full", "Body")
    outbox.outbox_deliver_due()
    (message,) = delivered(sandbox)
    assert message["To"] == "ops@elsewhere.example" and message["From"] == SENDER
    assert "Disk almost full" in str(message["Subject"])


def test_a_drain_that_hands_over_puts_the_rest_of_its_batch_back_in_the_queue(
    sandbox: Any, settings: Any
) -> None:
    """A drain claims a batch at once; stopping early (a click waits for this process)
    leaves none of the batch claimed: the rest is due again for whichever worker comes."""
    from smtp_settings import enqueue

    save(sandbox.form_values())
    for n in range(5):
        mail.send_mail(f"Batch {n}", "Body", SENDER, ["it@x.example"])
    enqueue._mark_interactive("a-click-that-waits")
    try:
        report = outbox.outbox_deliver_due()
    finally:
        enqueue.task_started("smtp_settings.tasks.validate", "a-click-that-waits")
    assert report == {"sent": 1}
    assert states() == [DeliveryState.SENT] + [DeliveryState.QUEUED] * 4
    assert not Delivery.objects.filter(claimed_until__isnull=False).exists()
    assert len(sandbox.exchange.delivered) == 1
    outbox.outbox_deliver_due()
    assert states() == [DeliveryState.SENT] * 5


@pytest.mark.django_db(transaction=True)
def test_mail_is_accepted_while_the_broker_and_cache_are_away(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    # A Redis that is not there (a port nothing listens on, on loopback), as during a restart.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }
    with caplog.at_level("WARNING", logger="smtp_settings.enqueue"):
        mail.send_mail("While Redis restarts", "Body", SENDER, ["it@x.example"])
    assert Delivery.objects.get().state == DeliveryState.QUEUED
    assert "a worker takes it up later" in caplog.text


def test_a_drain_sends_each_message_with_its_own_attachments(sandbox: Any) -> None:
    """Attachments are read for the whole claim at once: the messages that have some get
    theirs, the others none, and no message costs a query of its own for them."""
    save(sandbox.form_values())
    for n in range(6):
        message = mail.EmailMessage(f"Part {n}", "Body", SENDER, ["it@x.example"])
        if n % 3 == 0:
            message.attach(f"part{n}.txt", f"content of part {n}\n", "text/plain")
        message.send()
    with CaptureQueriesContext(connection) as queries:
        outbox.outbox_deliver_due()
    assert states() == [DeliveryState.SENT] * 6
    # One claim of six: which have attachments, then theirs.
    read = [query for query in queries if "post_office_attachment" in query["sql"]]
    assert len(read) == 2, [query["sql"] for query in read]
    for message in delivered(sandbox):
        n = int(message["Subject"].split()[-1])
        files = [part.get_filename() for part in message.iter_attachments()]
        assert files == ([f"part{n}.txt"] if n % 3 == 0 else []), message["Subject"]
