"""Two-factor sign-in without a browser: the requirement for administrators, setting up the
app, the code step, backup codes, and django-axes counting wrong codes."""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import two_factor
from activity.models import Entry, Kind

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse 42"


@pytest.fixture(autouse=True)
def _required(settings: Any) -> None:
    settings.SEI_REQUIRE_2FA = True
    # django-otp's own pause after a wrong code is tested apart; here every code is checked.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_for(key: bytes, *, steps_ahead: int = 0) -> str:
    # RFC 6238 as django-otp computes it; a later step is a code the app shows later on.
    return f"{totp(key, drift=steps_ahead):06d}"


def enrolled(user: User) -> tuple[bytes, list[str]]:
    device = two_factor.two_factor_pending_app(user=user)
    codes = two_factor.two_factor_enrol(user=user, code=code_for(device.bin_key))
    assert codes is not None
    return device.bin_key, codes


def password_step(client: Client, username: str = "root-admin", **extra: str) -> Any:
    return client.post(reverse("login"), {"username": username, "password": PASSWORD, **extra})


ADMIN_PAGES = [
    "administration",
    "smtp_settings:manage",
    "smtp_settings:outbox",
    "accounts:users",
    "accounts:user_add",
    "activity",
]


@pytest.mark.parametrize("route", ADMIN_PAGES)
def test_an_administrator_without_a_second_factor_is_sent_to_set_it_up(
    admin_client: Client, route: str
) -> None:
    response = admin_client.get(reverse(route))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two_factor") + "?next=")


def test_the_setup_page_home_and_password_change_stay_reachable(admin_client: Client) -> None:
    page = admin_client.get(reverse("accounts:two_factor"))
    assert page.status_code == 200 and 'id="two-factor-required"' in page.content.decode()
    assert admin_client.get(reverse("home")).status_code == 200
    assert admin_client.get(reverse("password_change")).status_code == 200


def test_setting_up_the_app_opens_administration(
    admin_client: Client, admin_user: User, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    target = reverse("smtp_settings:manage")
    page = admin_client.get(reverse("accounts:two_factor") + f"?next={target}").content.decode()
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1)
    uri = re.search(r'id="totp-uri">([^<]+)<', page).group(1)
    assert uri.startswith("otpauth://totp/SEI%20Administration%3Aroot-admin?")
    assert 'id="totp-qr"' in page and 'src="data:image/svg+xml' in page
    key = base64.b32decode(secret.replace(" ", ""))

    wrong = admin_client.post(
        reverse("accounts:two_factor"),
        {"password": PASSWORD, "code": f"{(int(code_for(key)) + 1) % 10**6:06d}"},
    )
    assert wrong.status_code == 200 and "That code is not right" in wrong.content.decode()
    done = admin_client.post(
        reverse("accounts:two_factor"),
        {"password": PASSWORD, "code": code_for(key), "next": target},
    )
    assert done.status_code == 302
    assert done["Location"].startswith(reverse("accounts:backup_codes"))
    codes_page = admin_client.get(done["Location"]).content.decode()
    assert codes_page.count("<li><code>") == two_factor.BACKUP_CODE_COUNT
    assert f'href="{target}"' in codes_page
    assert admin_client.get(target).status_code == 200
    entry = Entry.objects.get(kind=Kind.TWO_FACTOR_ENROLLED)
    assert entry.actor == admin_user
    # The key is a shared secret: shown while setting up, never written to the log.
    assert secret.replace(" ", "") not in caplog.text and key.hex() not in caplog.text


def test_with_the_app_set_up_the_password_alone_does_not_sign_in(admin_user: User) -> None:
    key, _ = enrolled(admin_user)
    client = Client()
    target = reverse("accounts:users")
    response = password_step(client, next=target)
    assert response.status_code == 302 and response["Location"] == reverse("login_code")
    assert client.get(reverse("home")).status_code == 302  # not signed in yet
    assert client.get(target).status_code == 302

    step = client.post(reverse("login_code"), {"code": code_for(key, steps_ahead=1)})
    assert step.status_code == 302 and step["Location"] == target
    assert client.get(target).status_code == 200
    entry = Entry.objects.filter(kind=Kind.SIGNIN_SUCCEEDED).latest("pk")
    assert entry.summary == "Signed in with password and code."


def test_a_wrong_code_is_refused_and_recorded(admin_user: User) -> None:
    key, _ = enrolled(admin_user)
    client = Client()
    password_step(client)
    wrong = f"{(int(code_for(key, steps_ahead=1)) + 1) % 10**6:06d}"
    response = client.post(reverse("login_code"), {"code": wrong})
    assert response.status_code == 200 and "That code is not right" in response.content.decode()
    assert client.get(reverse("home")).status_code == 302
    entry = Entry.objects.get(kind=Kind.TWO_FACTOR_FAILED)
    assert entry.actor == admin_user and wrong not in entry.summary
    # django-axes keeps the failed attempt's form, with the code masked.
    attempt = AccessAttempt.objects.get()
    assert attempt.failures_since_start == 1 and wrong not in attempt.post_data


def test_a_code_works_once(admin_user: User) -> None:
    key, _ = enrolled(admin_user)
    code = code_for(key, steps_ahead=1)
    first = Client()
    password_step(first)
    assert first.post(reverse("login_code"), {"code": code}).status_code == 302
    second = Client()
    password_step(second)
    assert second.post(reverse("login_code"), {"code": code}).status_code == 200


def test_a_backup_code_works_once(admin_user: User) -> None:
    _, codes = enrolled(admin_user)
    client = Client()
    password_step(client)
    used = client.post(reverse("login_code"), {"code": codes[0].upper()}, follow=True)
    assert "You signed in with a backup code; 9 left" in used.content.decode()
    assert Entry.objects.filter(kind=Kind.BACKUP_CODE_USED).count() == 1
    again = Client()
    password_step(again)
    assert again.post(reverse("login_code"), {"code": codes[0]}).status_code == 200
    assert codes[0] not in two_factor.two_factor_backup_codes(user=admin_user)


def test_wrong_codes_count_towards_the_lockout_like_wrong_passwords(
    admin_user: User, settings: Any
) -> None:
    key, _ = enrolled(admin_user)
    wrong = f"{(int(code_for(key, steps_ahead=1)) + 1) % 10**6:06d}"
    client = Client()
    client.post(reverse("login"), {"username": "root-admin", "password": "not it"})
    password_step(client)
    for _ in range(3):
        assert client.post(reverse("login_code"), {"code": wrong}).status_code == 200
    # A right password in between does not wipe the count: only a full sign-in does.
    assert password_step(client)["Location"] == reverse("login_code")
    locked = client.post(reverse("login_code"), {"code": wrong})
    assert locked.status_code == 429 and 'id="locked-out"' in locked.content.decode()
    # Locked: neither the right password nor the right code gets in now.
    assert password_step(client).status_code == 429
    assert client.get(reverse("login_code")).status_code == 302  # the code step is over
    # The owner at another address is not locked out (user and address count together).
    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert password_step(elsewhere).status_code == 302


def test_the_code_step_ends_after_a_while(admin_user: User, settings: Any) -> None:
    key, _ = enrolled(admin_user)
    client = Client()
    password_step(client)
    settings.SEI_SIGNIN_CODE_MINUTES = -1
    response = client.post(reverse("login_code"), {"code": code_for(key, steps_ahead=1)})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "Sign in again" in client.get(reverse("login")).content.decode()


def test_a_session_from_before_the_setup_gives_a_code_to_enter_administration(
    admin_client: Client, admin_user: User
) -> None:
    key, _ = enrolled(admin_user)
    response = admin_client.get(reverse("administration"), follow=True)
    assert 'id="two-factor-verify"' in response.content.decode()
    done = admin_client.post(
        reverse("accounts:two_factor"),
        {"code": code_for(key, steps_ahead=1), "next": reverse("administration")},
    )
    assert done.status_code == 302 and done["Location"] == reverse("administration")
    assert admin_client.get(reverse("administration")).status_code == 200


def test_after_a_wrong_code_django_otp_asks_to_wait(admin_user: User, settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    key, _ = enrolled(admin_user)
    client = Client()
    password_step(client)
    wrong = f"{(int(code_for(key, steps_ahead=1)) + 1) % 10**6:06d}"
    client.post(reverse("login_code"), {"code": wrong})
    response = client.post(reverse("login_code"), {"code": code_for(key, steps_ahead=1)})
    assert "Too many wrong codes in a row: wait" in response.content.decode()
    # The right code, typed during the pause, was not checked: it is not counted as wrong.
    assert Entry.objects.filter(kind=Kind.TWO_FACTOR_FAILED).count() == 1
    assert AccessAttempt.objects.get().failures_since_start == 1


def test_renewing_backup_codes_replaces_them(admin_client: Client, admin_user: User) -> None:
    key, codes = enrolled(admin_user)
    admin_client.post(
        reverse("accounts:two_factor"), {"code": code_for(key, steps_ahead=1)}
    )  # this session gives its code
    renewed = admin_client.post(reverse("accounts:backup_codes"), {"password": PASSWORD})
    assert renewed.status_code == 302
    shown = admin_client.get(renewed["Location"]).content.decode()
    fresh = two_factor.two_factor_backup_codes(user=admin_user)
    assert len(fresh) == two_factor.BACKUP_CODE_COUNT and not set(fresh) & set(codes)
    assert all(f"<code>{code}</code>" in shown for code in fresh)
    assert Entry.objects.filter(kind=Kind.BACKUP_CODES_RENEWED).exists()


def test_backup_codes_are_not_shown_to_a_session_without_its_code(
    admin_client: Client, admin_user: User
) -> None:
    enrolled(admin_user)
    response = admin_client.get(reverse("accounts:backup_codes"))
    assert response.status_code == 302 and response["Location"] == reverse("accounts:two_factor")


def test_without_the_requirement_administrators_may_skip_it_and_are_told(
    admin_client: Client, settings: Any
) -> None:
    settings.SEI_REQUIRE_2FA = False
    page = admin_client.get(reverse("administration"))
    assert page.status_code == 200
    assert 'id="two-factor-optional"' in page.content.decode()
    assert not TOTPDevice.objects.exists()


def test_people_who_are_not_administrators_are_not_asked(client: Client, plain_user: User) -> None:
    client.force_login(plain_user)
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("administration")).status_code == 403


def test_a_new_phone_replaces_the_old_app_once_confirmed(
    admin_client: Client, admin_user: User
) -> None:
    old_key, _ = enrolled(admin_user)
    admin_client.post(reverse("accounts:two_factor"), {"code": code_for(old_key, steps_ahead=1)})
    admin_client.post(reverse("accounts:two_factor"), {"action": "replace", "password": PASSWORD})
    page = admin_client.get(reverse("accounts:two_factor")).content.decode()
    assert "Set up a new phone" in page
    new_key = base64.b32decode(
        re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    )
    assert new_key != old_key
    # Until confirmed, the old app still signs in.
    assert TOTPDevice.objects.filter(user=admin_user, confirmed=True).get().bin_key == old_key
    done = admin_client.post(reverse("accounts:two_factor"), {"code": code_for(new_key)})
    assert done.status_code == 302
    assert TOTPDevice.objects.get(user=admin_user).bin_key == new_key
    assert (
        "the old one no longer works"
        in Entry.objects.filter(kind=Kind.TWO_FACTOR_ENROLLED).latest("pk").summary
    )


def test_an_administrator_can_reset_someone_elses_second_factor(
    admin_client: Client, admin_user: User, delegated_admin: User, settings: Any
) -> None:
    settings.SEI_REQUIRE_2FA = False  # the acting administrator's own factor is not the point
    enrolled(delegated_admin)
    response = admin_client.post(
        reverse("accounts:user_action", args=[delegated_admin.pk]), {"action": "reset_2fa"}
    )
    assert response.status_code == 302
    assert not two_factor.two_factor_is_enrolled(user=delegated_admin)
    entry = Entry.objects.get(kind=Kind.TWO_FACTOR_RESET)
    assert entry.actor == admin_user and "mail-admin" in entry.summary


def test_wrong_codes_from_a_signed_in_session_lock_and_end_it(
    admin_client: Client, admin_user: User
) -> None:
    key, _ = enrolled(admin_user)
    wrong = f"{(int(code_for(key, steps_ahead=1)) + 1) % 10**6:06d}"
    for _ in range(4):
        assert admin_client.post(reverse("accounts:two_factor"), {"code": wrong}).status_code == 200
    assert admin_client.post(reverse("accounts:two_factor"), {"code": wrong}).status_code == 429
    assert admin_client.get(reverse("home")).status_code == 302  # signed out


def test_an_administrator_without_a_second_factor_sets_it_up_right_after_the_password(
    admin_user: User, plain_user: User
) -> None:
    target = reverse("smtp_settings:manage")
    response = password_step(Client(), next=target)
    assert response["Location"] == reverse("accounts:two_factor") + f"?next={target}"
    # People who are not administrators are not asked.
    other = Client().post(reverse("login"), {"username": "someone", "password": PASSWORD})
    assert other["Location"] == reverse("home")


def verified_session(client: Client, user: User) -> tuple[bytes, list[str]]:
    key, codes = enrolled(user)
    client.post(reverse("accounts:two_factor"), {"code": code_for(key, steps_ahead=1)})
    return key, codes


def test_a_new_phone_asks_for_the_password_again(admin_client: Client, admin_user: User) -> None:
    verified_session(admin_client, admin_user)
    url = reverse("accounts:two_factor")
    # A stolen session, without the password, cannot start setting up its own phone.
    for data in ({"action": "replace"}, {"action": "replace", "password": "a guess"}):
        response = admin_client.post(url, data)
        assert response.status_code == 200
        assert 'id="totp-secret"' not in response.content.decode()
        assert not two_factor.two_factor_replacing(user=admin_user)
    assert "That is not your password" in response.content.decode()
    entry = Entry.objects.get(kind=Kind.PASSWORD_WRONG)
    assert entry.actor == admin_user and entry.summary.startswith("Wrong current password")
    assert "a guess" not in entry.summary
    attempt = AccessAttempt.objects.get()  # counted with failed sign-ins, the guess masked
    assert attempt.failures_since_start == 1 and "a guess" not in attempt.post_data
    right = admin_client.post(url, {"action": "replace", "password": PASSWORD})
    assert right.status_code == 302
    assert 'id="totp-secret"' in admin_client.get(url).content.decode()


def first_setup_key(client: Client) -> bytes:
    page = client.get(reverse("accounts:two_factor")).content.decode()
    return base64.b32decode(
        re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    )


def test_the_first_app_asks_for_the_password_again(admin_client: Client, admin_user: User) -> None:
    # A stolen session of an administrator without a second factor cannot bind its phone.
    key = first_setup_key(admin_client)
    url = reverse("accounts:two_factor")
    assert 'id="id_password"' in admin_client.get(url).content.decode()
    for data in ({"code": code_for(key)}, {"code": code_for(key), "password": "a guess"}):
        response = admin_client.post(url, data)
        assert response.status_code == 200
        assert not two_factor.two_factor_is_enrolled(user=admin_user)
    assert "That is not your password" in response.content.decode()
    entry = Entry.objects.get(kind=Kind.PASSWORD_WRONG)
    assert entry.actor == admin_user and "a guess" not in entry.summary
    assert AccessAttempt.objects.get().failures_since_start == 1  # counted as a failed sign-in
    assert not Entry.objects.filter(kind=Kind.TWO_FACTOR_ENROLLED).exists()
    done = admin_client.post(url, {"code": code_for(key), "password": PASSWORD})
    assert done.status_code == 302 and two_factor.two_factor_is_enrolled(user=admin_user)


def test_wrong_passwords_at_the_first_app_lock_and_end_the_session(
    admin_client: Client, admin_user: User
) -> None:
    key = first_setup_key(admin_client)
    url = reverse("accounts:two_factor")
    data = {"code": code_for(key), "password": "a guess"}
    for _ in range(4):
        assert admin_client.post(url, data).status_code == 200
    locked = admin_client.post(url, data)
    assert locked.status_code == 429 and 'id="locked-out"' in locked.content.decode()
    assert admin_client.get(reverse("home")).status_code == 302  # signed out
    assert not two_factor.two_factor_is_enrolled(user=admin_user)


def test_new_backup_codes_ask_for_the_password_again(
    admin_client: Client, admin_user: User
) -> None:
    _, codes = verified_session(admin_client, admin_user)
    url = reverse("accounts:backup_codes")
    for data in ({}, {"password": "a guess"}):
        response = admin_client.post(url, data)
        assert response.status_code == 200
        assert two_factor.two_factor_backup_codes(user=admin_user) == codes
        assert not any(code in response.content.decode() for code in codes)
    assert "That is not your password" in response.content.decode()
    assert Entry.objects.filter(kind=Kind.PASSWORD_WRONG).count() == 1
    assert not Entry.objects.filter(kind=Kind.BACKUP_CODES_RENEWED).exists()


def test_backup_codes_are_shown_only_once_after_they_are_made(
    admin_client: Client, admin_user: User
) -> None:
    page = admin_client.get(reverse("accounts:two_factor")).content.decode()
    key = base64.b32decode(
        re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    )
    done = admin_client.post(
        reverse("accounts:two_factor"), {"password": PASSWORD, "code": code_for(key)}
    )
    codes = two_factor.two_factor_backup_codes(user=admin_user)
    first = admin_client.get(done["Location"]).content.decode()
    assert all(f"<code>{code}</code>" in first for code in codes)
    # Later, as to someone who found the session signed in: the count, not the codes.
    again = admin_client.get(reverse("accounts:backup_codes")).content.decode()
    assert not any(code in again for code in codes)
    assert 'id="codes-not-shown"' in again and 'id="backup-left">10<' in again


@pytest.mark.parametrize(
    ("route", "data"),
    [
        ("accounts:two_factor", {"action": "replace", "password": "a guess"}),
        ("accounts:backup_codes", {"password": "a guess"}),
    ],
)
def test_wrong_passwords_when_asked_again_lock_and_end_the_session(
    admin_client: Client, admin_user: User, route: str, data: dict[str, str]
) -> None:
    _, codes = verified_session(admin_client, admin_user)
    for _ in range(4):
        assert admin_client.post(reverse(route), data).status_code == 200
    locked = admin_client.post(reverse(route), data)
    assert locked.status_code == 429 and 'id="locked-out"' in locked.content.decode()
    assert admin_client.get(reverse("home")).status_code == 302  # signed out
    assert two_factor.two_factor_backup_codes(user=admin_user) == codes
    assert not two_factor.two_factor_replacing(user=admin_user)
    assert "signed out" in Entry.objects.filter(kind=Kind.PASSWORD_WRONG).latest("pk").summary
    # The sign-in is locked too: the wrong passwords counted with failed sign-ins.
    assert password_step(Client()).status_code == 429


def test_one_second_to_wait_is_said_in_the_singular(admin_user: User, settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    key, _ = enrolled(admin_user)
    client = Client()
    password_step(client)
    wrong = f"{(int(code_for(key, steps_ahead=1)) + 1) % 10**6:06d}"
    client.post(reverse("login_code"), {"code": wrong})
    page = client.post(reverse("login_code"), {"code": code_for(key, steps_ahead=1)})
    assert "wait 1 second," in page.content.decode()


def test_setting_up_after_a_wrong_code_says_to_wait(
    admin_client: Client, admin_user: User, settings: Any
) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    page = admin_client.get(reverse("accounts:two_factor")).content.decode()
    key = base64.b32decode(
        re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    )
    admin_client.post(
        reverse("accounts:two_factor"),
        {"password": PASSWORD, "code": f"{(int(code_for(key)) + 1) % 10**6:06d}"},
    )
    right = admin_client.post(
        reverse("accounts:two_factor"), {"password": PASSWORD, "code": code_for(key)}
    )
    text = right.content.decode()
    assert right.status_code == 200 and "Too many wrong codes in a row: wait" in text
    assert "That code is not right" not in text
    assert not two_factor.two_factor_is_enrolled(user=admin_user)


def test_the_lockout_page_says_how_long_in_words(admin_user: User) -> None:
    client = Client()
    for attempt in range(5):
        response = client.post(
            reverse("login"), {"username": "root-admin", "password": f"no {attempt}"}
        )
    text = response.content.decode()
    assert response.status_code == 429 and "Try again in 15 minutes," in text
    assert "PT15M" not in text
