"""An administrator adds an alert destination in a real browser, sends it a test alert and
sees it arrive at a local receiver."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from .alert_receiver import AlertReceiver, alert_receiver  # noqa: F401  (the fixture)
from .browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_add_a_destination_and_send_it_a_test_alert(
    live_server: Any,
    page: Any,
    alert_receiver: AlertReceiver,  # noqa: F811
) -> None:
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.get_by_role("link", name="Administration", exact=True).first.click()
    page.get_by_role("link", name="Alerts", exact=True).click()
    page.wait_for_url(f"{live_server.url}/administration/alerts/")

    page.get_by_label("Name").fill("Ops hook")
    page.get_by_label("Apprise URL").fill("nonsense://x")
    page.get_by_role("button", name="Add").click()
    assert "Apprise does not know this URL" in page.locator("#destination-add").inner_text()

    page.get_by_label("Apprise URL").fill(alert_receiver.url("/hooks/t0ken-in-the-path-77"))
    page.get_by_role("button", name="Add").click()
    row = page.locator("#destinations tr", has_text="Ops hook")
    assert "JSON" in row.inner_text()
    assert "t0ken-in-the-path-77" not in page.content()

    row.get_by_role("button", name="Send a test alert").click()
    page.wait_for_selector("text=Test alert delivered to “Ops hook”")
    assert alert_receiver.titles() == ["Test alert from SEI Administration"]
    assert "never" not in page.locator("#destinations tr", has_text="Ops hook").inner_text()


def test_a_stopped_worker_is_a_banner_in_the_browser(live_server: Any, page: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from smtp_settings.models import WorkerHeartbeat

    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    # Its last report is older than three beats: the process counts as gone.
    WorkerHeartbeat.objects.create(
        worker="celery@here", role=WorkerHeartbeat.WORKER,
        seen_at=timezone.now() - timedelta(minutes=10),
    )  # fmt: skip
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.goto(f"{live_server.url}/administration/alerts/")
    banner = page.locator("#banner-worker-gone")
    assert "The Celery worker (celery@here) has not reported since" in banner.inner_text()
    page.get_by_role("link", name="Background processing").click()
    assert "The Celery worker is stopped" in page.locator("#background").inner_text()
