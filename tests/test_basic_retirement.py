"""The end of Basic authentication made visible (issue 20 point 7): a notice on Manage SMTP
and in the status block, and both ways out named by the 550 5.7.30 and 535 5.7.139 rows."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from smtp_settings.models import SmtpSettings

from .sandbox.world import SENDER

pytestmark = pytest.mark.django_db


def saved(**values: Any) -> SmtpSettings:
    row = SmtpSettings.load()
    row.sender_email = SENDER
    for name, value in values.items():
        setattr(row, name, value)
    row.save()
    return row


def test_basic_against_exchange_online_shows_the_notice_with_a_way_into_the_assistant(
    admin_client: Client,
) -> None:
    saved(smtp_server="smtp.office365.com", auth_type="basic", username=SENDER, password="pw")
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    # Said once, by the status block: not a second time by the page around it.
    assert 'id="status-basic-notice"' in page and page.count("550 5.7.30") == 1
    assert "550 5.7.30" in page and "December 2026" in page
    assert f'href="{reverse("smtp_settings:setup")}"' in page
    index = admin_client.get(reverse("administration")).content.decode()
    assert 'id="status-basic-notice"' in index


@pytest.mark.parametrize(
    "values",
    [
        {"smtp_server": "smtp.office365.com", "auth_type": "oauth2"},
        {"smtp_server": "mail.example.org", "auth_type": "basic", "username": "u"},
        {"smtp_server": "smtp.office365.com", "auth_type": "basic", "transport": "graph"},
    ],
)
def test_no_notice_where_basic_is_not_ending(admin_client: Client, values: Any) -> None:
    saved(**values)
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert "basic-notice" not in page


def test_550_5_7_30_names_both_ways_out(sandbox: Any, run_validation: Any) -> None:
    values = {**sandbox.form_values(), "auth_type": "basic", "username": SENDER, "password": "pw"}
    step = run_validation(values)["by_step"]["authenticate"]
    assert step["diagnosis"] == "basic_retired" and "5.7.30" in step["server_answer"]
    assert "OAuth 2.0" in step["fix"] and "Microsoft Graph" in step["fix"]
    assert "SmtpClientAuthenticationDisabled $false" in step["fix"]


def test_535_5_7_139_names_both_ways_out(sandbox: Any, run_validation: Any) -> None:
    sandbox.tenant.smtp_auth_disabled = True
    step = run_validation(sandbox.form_values())["by_step"]["authenticate"]
    assert step["diagnosis"] == "auth_disabled" and "5.7.139" in step["server_answer"]
    assert "Microsoft Graph" in step["fix"]
    assert any("Set-CASMailbox" in command for command in step["commands"])


def test_a_message_held_by_535_5_7_139_shows_the_commands_its_fix_points_to(
    sandbox: Any, admin_client: Client, settings: Any
) -> None:
    from django.core import mail

    from smtp_settings import outbox
    from smtp_settings.models import Delivery, DeliveryState

    from .test_sending import save

    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    save(sandbox.form_values())
    sandbox.tenant.smtp_auth_disabled = True
    mail.send_mail("Invoice", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    held = Delivery.objects.get(email__subject="Invoice")
    assert held.state == DeliveryState.HELD and held.diagnosis == "auth_disabled"
    page = admin_client.get(reverse("smtp_settings:outbox_message", args=[held.email_id]))
    text = page.content.decode()
    assert "commands below" in text
    assert (
        f"Set-CASMailbox -Identity &#x27;{SENDER}&#x27; -SmtpClientAuthenticationDisabled $false"
        in text
    )


def test_the_status_block_does_not_show_an_oauth_health_check_for_basic_settings(
    admin_client: Client,
) -> None:
    from smtp_settings.models import MailHealthCheck

    saved(smtp_server="smtp.example.test", auth_type="oauth2", client_id="x")
    MailHealthCheck.objects.create(ok=True, step="token_contents", detail="Token for Exchange.")
    page = admin_client.get(reverse("administration")).content.decode()
    assert "Token for Exchange." in page and 'id="health-not-run"' not in page
    assert 'id="health-older"' not in page
    # Saved again after the check: the result is of the settings before.
    saved(smtp_server="smtp.other.test")
    page = admin_client.get(reverse("administration")).content.decode()
    assert 'id="health-older"' in page
    # Basic: the health check (an OAuth 2.0 token) does not apply.
    saved(auth_type="basic", username=SENDER, password="pw")
    page = admin_client.get(reverse("administration")).content.decode()
    assert 'id="health-not-run"' in page and "Token for Exchange." not in page
    # Nor is it offered: the button would say "running" and nothing would run.
    assert "Run health check now" not in page
    response = admin_client.post(reverse("smtp_settings:health_check"), follow=True)
    assert "do not use one" in response.content.decode()
    from django.core.cache import cache

    assert cache.get("mail-health-check-requested") is None


def test_manage_smtp_names_each_input_once(admin_client: Client) -> None:
    """Basic's Password and the certificate import's password once shared their input's
    and their row's id: a label then points at the wrong field."""
    import re

    saved(smtp_server="smtp.example.test", auth_type="oauth2", client_id="x")
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert ids and len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_choosing_basic_says_before_save_that_it_ends_for_microsoft_365(
    admin_client: Client,
) -> None:
    saved(smtp_server="smtp.office365.com", auth_type="oauth2")
    page = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    # Shown by the page's script when Basic is chosen (the rows of another type hide).
    assert 'data-auth="basic" id="basic-ending-hint"' in page and "550 5.7.30" in page
