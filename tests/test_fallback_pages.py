"""What the pages say about the fallback connection (issue 20): the banner when both
connections fail, the banner once a working primary is saved, which outbox rows the fallback
sent and why, and the Administration page's line on how mail leaves."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from smtp_settings import outbox
from smtp_settings.mail import oauth
from smtp_settings.models import Delivery, DeliveryState, SmtpSettings

from .sandbox.directory import GRAPH_RESOURCE
from .sandbox.world import CLIENT_SECRET, SENDER
from .test_banners import banners_of
from .test_fallback import FALLBACK_APP, save_fallback_graph, save_primary

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    settings.SMTP_MAX_MESSAGES_PER_MINUTE = 6000  # the limits have tests of their own


@pytest.fixture
def with_fallback(sandbox: Any, settings: Any) -> Any:
    """Primary SMTP and a working fallback through Graph."""
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    save_primary(sandbox.form_values())
    save_fallback_graph(sandbox)
    return sandbox


def banner_texts(client: Client, url: str = "smtp_settings:manage") -> dict[str, str]:
    page = client.get(reverse(url)).content.decode()
    return {key: html.unescape(text) for _, key, text in banners_of(page)}


def test_when_both_connections_fail_the_banner_names_both_and_says_mail_is_held(
    with_fallback: Any, admin_client: Client
) -> None:
    with_fallback.tenant.apps[FALLBACK_APP].roles[GRAPH_RESOURCE] = []  # no Mail.Send
    with_fallback.app.secrets[CLIENT_SECRET] = True
    oauth.forget_applications()
    for n in range(2):
        mail.send_mail(f"Nowhere {n}", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.HELD}

    text = banner_texts(admin_client)["mail-held"]
    assert "Both connections failed" in text
    assert re.search(r"\d+ messages held", text), text
    primary, fallback = text.split("The fallback connection", 1)
    assert "The client secret has expired (AADSTS7000222)" in primary
    assert "403 ErrorAccessDenied" in fallback and "Microsoft Graph (sendMail)" in fallback


def test_a_saved_working_primary_takes_the_banner_over_at_once(
    with_fallback: Any, admin_client: Client
) -> None:
    with_fallback.app.secrets[CLIENT_SECRET] = True
    oauth.forget_applications()
    mail.send_mail("Through the fallback", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    assert Delivery.objects.get().connection == "fallback"
    banners = banner_texts(admin_client)
    assert "Mail is sent through the fallback since" in banners["fallback-active"]

    # A new secret for the primary, saved on the page: no message has left since.
    with_fallback.app.add_secret("sandbox~New.Secret-0003")
    values = {**with_fallback.form_values(), "client_secret": "sandbox~New.Secret-0003"}
    saved = admin_client.post(reverse("smtp_settings:manage"), values, follow=True)
    assert "SMTP settings saved." in saved.content.decode()
    banners = {key: html.unescape(text) for _, key, text in banners_of(saved.content.decode())}
    assert "fallback-active" not in banners
    assert "tried first again" in banners["fallback-retry"]
    assert "Mail is sent through the fallback since" not in " ".join(banners.values())

    mail.send_mail("Primary again", "Body", SENDER, ["back@x.example"])
    outbox.outbox_deliver_due()
    assert Delivery.objects.get(email__subject="Primary again").connection == "primary"
    assert not {"fallback-active", "fallback-retry"} & set(banner_texts(admin_client))


def test_a_passing_validate_of_the_saved_primary_takes_the_banner_over(
    with_fallback: Any, admin_client: Client
) -> None:
    from smtp_settings import validation

    with_fallback.app.secrets[CLIENT_SECRET] = True
    oauth.forget_applications()
    mail.send_mail("Through the fallback", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    assert "fallback-active" in banner_texts(admin_client)

    # Fixed in Entra, not on the page: Validate of the saved values passes.
    with_fallback.app.secrets[CLIENT_SECRET] = False
    oauth.forget_applications()
    started = admin_client.post(
        reverse("smtp_settings:validate"),
        {**with_fallback.form_values(), "test_recipient": ""},
        HTTP_ACCEPT="application/json",
    )
    assert started.status_code == 202, started.content
    validation.validation_run_execute(run_id=started.json()["run"])
    banners = banner_texts(admin_client)
    assert "fallback-active" not in banners
    assert "passed Validate" in banners["fallback-retry"]


def test_the_outbox_marks_fallback_rows_and_says_why_the_primary_was_skipped(
    with_fallback: Any, admin_client: Client
) -> None:
    with_fallback.tenant.smtp_auth_disabled = True  # 535 5.7.139: SMTP AUTH switched off
    mail.send_mail("Via Graph", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    row = Delivery.objects.get()
    assert (row.state, row.connection, row.diagnosis) == ("sent", "fallback", "auth_disabled")

    listing = admin_client.get(reverse("smtp_settings:outbox")).content.decode()
    mark = re.search(r'<span class="via-fallback"[^>]*>(.*?)</span>', listing, re.S)
    assert mark is not None and "Fallback" in mark.group(1)

    page = html.unescape(
        admin_client.get(reverse("smtp_settings:outbox_message", args=[row.pk])).content.decode()
    )
    connection = re.search(r'id="message-connection">(.*?)</dd>', page, re.S)
    assert connection is not None
    assert "fallback connection" in connection.group(1)
    assert "Microsoft Graph (sendMail) as notifications@sandbox.example" in connection.group(1)
    skipped = re.search(r'id="primary-skipped">(.*?)</section>', page, re.S)
    assert skipped is not None
    why = skipped.group(1)
    assert f"SMTP 127.0.0.1:{with_fallback.exchange.port}" in why
    # The primary's own answer and the commands its fix speaks of are on the page.
    assert "535 5.7.139" in why
    assert "Set-CASMailbox -Identity 'notifications@sandbox.example'" in why
    assert "SmtpClientAuthenticationDisabled $false" in why


def test_the_administration_page_says_how_mail_leaves_graph_and_fallback_included(
    sandbox: Any, settings: Any, admin_client: Client
) -> None:
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    save_primary(sandbox.form_values())
    line = _sending_line(admin_client)
    assert f"SMTP 127.0.0.1:{sandbox.exchange.port} as {SENDER}" in line
    assert "fallback" not in line

    row = SmtpSettings.load()
    row.transport, row.graph_host, row.smtp_server = "graph", sandbox.graph.host, ""
    row.save()
    line = _sending_line(admin_client)
    assert f"Microsoft Graph (sendMail) as {SENDER}" in line and "127.0.0.1" not in line

    fallback = save_fallback_graph(sandbox, sender="fallback@sandbox.example")
    fallback.transport, fallback.smtp_server, fallback.port = "smtp", "127.0.0.1", 2525
    fallback.save()
    line = _sending_line(admin_client)
    assert "fallback connection: SMTP 127.0.0.1:2525 as fallback@sandbox.example" in line


def _sending_line(client: Client) -> str:
    page = html.unescape(client.get(reverse("administration")).content.decode())
    found = re.search(r'id="sending-through">(.*?)</p>', page, re.S)
    assert found is not None
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1)))


def test_both_failed_folded_into_the_primarys_banner_names_the_primary() -> None:
    from smtp_settings.monitoring.fallback_banners import held_by_both

    held = {
        "cause": "The client secret has expired.",
        "routes": {
            "primary": {"route": "SMTP smtp.office365.com:587 as a@x.example"},
            "fallback": {"route": "Microsoft Graph (sendMail) as a@x.example", "error": "403"},
        },
    }
    both = held_by_both(held, "2 messages")
    assert both is not None
    text, also = both
    assert "Retry now" in text
    # Added to an earlier banner of the primary's cause (the health check's), which does
    # not say which connection it is about.
    assert also.startswith("That is the primary connection (SMTP smtp.office365.com:587")
