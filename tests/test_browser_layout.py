"""The pages on a phone, a tablet and a laptop: nothing scrolls sideways, Save and Validate
stay within reach. With SEI_SCREENSHOTS_DIR set (`make screenshots`), the README's pictures
are taken here, so they always show the console as it is."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth.models import User
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from sei_admin.celery import app
from smtp_settings import outbox
from smtp_settings.credentials.service import certificate_create
from smtp_settings.models import Delivery, SmtpSettings, ValidationRun

from .browser import out_of_reach, sign_in
from .readme_pictures import PICTURES, manifest_write
from .sandbox.world import SENDER
from .test_sending import save

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = (390, 768, 1280, 1366)
SHOTS = os.environ.get("SEI_SCREENSHOTS_DIR", "")


def overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def shoot(page: Any, name: str, *, full_page: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full_page)


@pytest.fixture
def configured(live_server: Any, sandbox: Any, settings: Any) -> Any:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    save(sandbox.form_values())
    mail.send_mail(
        "Test email from vm on 2026-11-27 14:44:31.189063+00:00 with-a-very-long-unbroken-word",
        "Body",
        SENDER,
        ["someone.with.a.long.address@elsewhere.example"],
    )
    outbox.outbox_deliver_due()
    return live_server


PAGES_WITH_ROWS = {
    "Outbox": "/administration/smtp/outbox/",
    "Users": "/administration/users/",
    "Activity": "/administration/activity/",
    "Manage SMTP": "/administration/smtp/",
    "Set up Microsoft 365": "/administration/smtp/setup/",
}


def test_every_row_action_lies_in_the_window_at_every_width_light_and_dark(
    configured: Any, chromium: Any, sandbox: Any
) -> None:
    # A held message (Retry now and Discard), a user with a long address, an invitee.
    User.objects.create_user(
        "someone.with.a.long.name", "someone.with.a.long.address@elsewhere.example", "x"
    )
    # Two credentials, the next one a certificate: the widest rows of Manage SMTP.
    certificate_create(months=12, user=None)
    sandbox.mailbox.full_access.clear()
    mail.send_mail("Held", "Body", SENDER, ["another.long.address@elsewhere.example"])
    outbox.outbox_deliver_due()
    assert Delivery.objects.filter(state="held").exists()
    for scheme in ("light", "dark"):
        context = chromium.new_context(viewport={"width": 1366, "height": 800}, color_scheme=scheme)
        page = context.new_page()
        try:
            sign_in(page, configured.url, "ops", "a long passphrase 7")
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                for name, path in PAGES_WITH_ROWS.items():
                    page.goto(f"{configured.url}{path}")
                    assert out_of_reach(page) == [], (scheme, width, name)
                page.goto(f"{configured.url}/administration/smtp/outbox/")
                for action in ("Retry now", "Discard"):
                    button = page.locator("#outbox-table tr[data-state='held']").last.get_by_role(
                        "button", name=action
                    )
                    box = button.bounding_box()
                    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        finally:
            context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways_and_the_buttons_stay_in_reach(
    configured: Any, chromium: Any, width: int
) -> None:
    context = chromium.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    try:
        sign_in(page, configured.url, "ops", "a long passphrase 7")
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            page.goto(f"{configured.url}/administration/smtp/")
            page.get_by_role("button", name="Validate").click()
            page.locator("#run-verdict.verdict-passed").wait_for(timeout=30_000)
        run = ValidationRun.objects.get()
        message = Delivery.objects.get()
        paths = [
            "/",
            "/administration/",
            "/administration/smtp/",
            f"/administration/smtp/runs/{run.pk}/",
            "/administration/smtp/outbox/",
            f"/administration/smtp/outbox/{message.pk}/",
        ]
        for path in paths:
            page.goto(f"{configured.url}{path}")
            assert overflow(page) <= 0, (width, path, overflow(page))
        page.goto(f"{configured.url}/administration/smtp/")
        # Anywhere in the form, the action bar stays at the bottom of the window.
        page.get_by_label("SMTP Server", exact=True).focus()
        for name in ("Validate", "Save"):
            button = page.get_by_role("button", name=name, exact=True)
            box = button.bounding_box()
            assert box is not None and box["y"] + box["height"] <= 800, (width, name, box)
    finally:
        context.close()


def test_the_readme_pictures(configured: Any, chromium: Any, sandbox: Any) -> None:
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, configured.url, "ops", "a long passphrase 7")
        page.goto(f"{configured.url}/administration/smtp/")
        shoot(page, "manage-smtp", full_page=False)
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            page.get_by_role("button", name="Validate").click()
            page.locator("#run-verdict.verdict-passed").wait_for(timeout=30_000)
            page.locator("#validation").scroll_into_view_if_needed()
            shoot(page, "validate-passed", full_page=False)
            sandbox.mailbox.full_access.clear()  # the service principal loses FullAccess
            page.get_by_role("button", name="Validate").click()
            page.locator("#run-verdict.verdict-failed").wait_for(timeout=30_000)
            page.locator("#run-steps li[data-key='authenticate']").scroll_into_view_if_needed()
            shoot(page, "validate-failed", full_page=False)
        assert "Add-MailboxPermission" in page.locator("#run-steps").inner_text()
        # Mail held on the mailbox's permission (an error banner) and a secret expiring
        # within the week (a warning banner); an invited user beside the administrator.
        mail.send_mail("Weekly report", "Body", SENDER, ["finance@elsewhere.example"])
        outbox.outbox_deliver_due()
        SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).update(
            secret_expiration_date=timezone.localdate() + timedelta(days=5)
        )
        User.objects.create_user("lee", "lee@sandbox.example")
        for picture in PICTURES:
            if picture.file.startswith("validate-") or picture.file == "manage-smtp.png":
                continue
            page.goto(f"{configured.url}{reverse(picture.url_name)}")
            shoot(page, picture.file.removesuffix(".png"), full_page=False)
        page.goto(f"{configured.url}{reverse('administration')}")
        assert page.locator(".banner.error").count() == 1
        assert page.locator(".banner.warning").count() == 1
        if SHOTS:
            manifest_write()
    finally:
        context.close()
