"""Two-factor sign-in in a real browser: an administrator is sent to set up the app, scans
(here: reads) the key, signs out, signs in with a code; a wrong code is refused; a backup
code works once."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp

from activity.models import Entry, Kind

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long passphrase 7"


@pytest.fixture
def browser_admin(transactional_db: Any, settings: Any) -> User:
    settings.SEI_REQUIRE_2FA = True
    return User.objects.create_superuser("ops", "ops@contoso.example", PASSWORD)


def sign_out(page: Any, base_url: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base_url}/login/")


def password_step(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username", exact=True).fill("ops")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/login/code/")


def enter_code(page: Any, code: str) -> None:
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Verify").click()


def test_enrol_sign_out_and_sign_in_with_the_code(
    live_server: Any, page: Any, browser_admin: User
) -> None:
    base = live_server.url
    # An administrator without a second factor sets it up right after the password.
    page.goto(f"{base}/administration/")
    page.get_by_label("Username", exact=True).fill("ops")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/account/two-factor/?next=/administration/")
    assert page.locator("#two-factor-required").is_visible()
    assert page.locator("#totp-qr").is_visible()
    secret = page.locator("#totp-secret").inner_text()
    key = base64.b32decode(secret.replace(" ", ""))
    # The first app asks for the password again, like a new phone does.
    page.get_by_label("Your password", exact=True).fill(PASSWORD)
    page.get_by_label("Code from the app", exact=True).fill(f"{totp(key):06d}")
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    page.wait_for_url(f"{base}/account/two-factor/backup-codes/?next=/administration/")
    backup = page.locator("#backup-codes code").all_inner_texts()
    assert len(backup) == 10
    page.locator("#continue").click()
    page.wait_for_url(f"{base}/administration/")
    assert page.get_by_role("heading", name="Administration", exact=True).is_visible()
    sign_out(page, base)

    # The password alone leads to the code step; a wrong code is refused.
    password_step(page, base)
    right = f"{totp(key, drift=1):06d}"  # the app's next code: the first one is used up
    enter_code(page, f"{(int(right) + 1) % 10**6:06d}")
    assert page.get_by_text("That code is not right").is_visible()
    page.goto(f"{base}/administration/")
    page.wait_for_url(f"{base}/login/?next=/administration/")  # still not signed in
    page.goto(f"{base}/login/code/")
    time.sleep(1.2)  # django-otp waits a second after a wrong code before it checks another
    enter_code(page, right)
    page.wait_for_url(f"{base}/")
    page.get_by_role("link", name="Administration").click()
    page.wait_for_url(f"{base}/administration/")
    sign_out(page, base)

    # A backup code works once.
    password_step(page, base)
    enter_code(page, backup[0])
    page.wait_for_url(f"{base}/")
    assert page.get_by_text("You signed in with a backup code; 9 left").is_visible()
    sign_out(page, base)
    password_step(page, base)
    enter_code(page, backup[0])
    assert page.get_by_text("That code is not right").is_visible()
    assert page.url == f"{base}/login/code/"

    kinds = list(Entry.objects.filter(actor=browser_admin).values_list("kind", flat=True))
    assert Kind.TWO_FACTOR_ENROLLED in kinds and Kind.BACKUP_CODE_USED in kinds
    assert kinds.count(Kind.TWO_FACTOR_FAILED) == 2
