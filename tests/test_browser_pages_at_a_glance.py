"""The pages at a glance (issue 22): the top bar on one line on a phone, a sign-in card of
a sign-in form's size on a laptop, backup codes shown once with the way on before the form
that would void them."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp

from .browser import out_of_reach

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a long passphrase 7"


def test_the_sign_in_card_is_the_size_of_its_form_on_a_laptop(
    live_server: Any, chromium: Any
) -> None:
    context = chromium.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        card = page.locator("section.card.login").bounding_box()
        assert card is not None and card["width"] <= 480, card
        # Centred: as much room on its left as on its right.
        assert abs(card["x"] - (1366 - card["x"] - card["width"])) <= 2, card
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_backup_codes_then_the_way_on_with_a_one_line_top_bar_on_a_phone(
    live_server: Any, chromium: Any, settings: Any, scheme: str
) -> None:
    settings.SEI_REQUIRE_2FA = True
    User.objects.create_superuser("ops", "ops@contoso.example", PASSWORD)
    base = live_server.url
    context = chromium.new_context(viewport={"width": 390, "height": 800}, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(f"{base}/administration/")
        page.get_by_label("Username", exact=True).fill("ops")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/account/two-factor/?next=/administration/")
        key = base64.b32decode(page.locator("#totp-secret").inner_text().replace(" ", ""))
        page.get_by_label("Your password", exact=True).fill(PASSWORD)
        page.get_by_label("Code from the app", exact=True).fill(f"{totp(key):06d}")
        page.get_by_role("button", name="Turn on two-factor sign-in").click()
        page.wait_for_url(f"{base}/account/two-factor/backup-codes/?next=/administration/")

        # The top bar: breadcrumbs and the account's menu side by side, one line high.
        crumbs = page.locator(".topbar .breadcrumbs").bounding_box()
        menu = page.locator(".topbar .account-menu > summary").bounding_box()
        bar = page.locator(".topbar").bounding_box()
        assert crumbs and menu and bar
        assert abs(crumbs["y"] - menu["y"]) < 8 and bar["height"] < 48, (crumbs, menu, bar)
        assert out_of_reach(page) == []

        # Codes shown once: the way on comes first, the form that voids them stays folded.
        codes = page.locator("#backup-codes").bounding_box()
        go_on = page.locator("#continue").bounding_box()
        assert codes and go_on and go_on["y"] > codes["y"]
        assert not page.get_by_label("Your password", exact=True).is_visible()
        renew = page.locator("#renew details.renew > summary").bounding_box()
        assert renew and renew["y"] > go_on["y"]

        # The account's links are one tap away, inside the window.
        page.get_by_label("Account of ops").click()
        sign_out = page.get_by_role("button", name="Sign out")
        box = sign_out.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
        sign_out.click()
        page.wait_for_url(f"{base}/login/")
    finally:
        context.close()
