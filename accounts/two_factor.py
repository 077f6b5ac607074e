"""Two-factor sign-in: an authenticator app (TOTP) and single-use backup codes, both kept
by django-otp in its own tables.

The TOTP key is a shared secret: django-otp stores it as it must (the server computes the
same codes as the app), so it is shown once while setting up and never logged.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import segno
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.utils import timezone
from django_otp import user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from activity.models import Kind
from activity.service import activity_record

BACKUP_CODE_COUNT = 10
APP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"
# Backup codes are shown once, right after they are made, within this many seconds; to see
# codes again, one makes new ones, which asks for the password.
SHOW_CODES = "sei_backup_codes_show"
SHOW_CODES_SECONDS = 10 * 60


def two_factor_is_enrolled(*, user: AbstractBaseUser) -> bool:
    return user_has_device(user, confirmed=True)


def two_factor_pending_app(*, user: AbstractBaseUser) -> TOTPDevice:
    """The app being set up: the same key until it is confirmed, so that a reload does not
    invalidate what the administrator already scanned."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)


@dataclass(frozen=True)
class AppSetup:
    """What the set-up page shows: the otpauth:// URI as a QR code and as text, and the key
    in base32 for typing in by hand."""

    uri: str
    secret: str
    qr_data_uri: str


def two_factor_app_setup(*, device: TOTPDevice) -> AppSetup:
    secret = base64.b32encode(device.bin_key).decode()
    uri = device.config_url
    qr = segno.make(uri, error="m")
    return AppSetup(
        uri=uri,
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        qr_data_uri=qr.svg_data_uri(scale=4, dark="#000", light="#fff"),
    )


def _normalised(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


@dataclass(frozen=True)
class CodeCheck:
    device: Device | None
    # Seconds to wait before django-otp checks another code for this device (after wrong ones).
    wait_seconds: int = 0

    @property
    def used_backup_code(self) -> bool:
        return isinstance(self.device, StaticDevice)


def _wait(device: Device) -> int:
    allowed, details = device.verify_is_allowed()
    if allowed or not details or not details.get("locked_until"):
        return 0
    return max(1, int((details["locked_until"] - timezone.now()).total_seconds()) + 1)


def two_factor_check_code(*, user: AbstractBaseUser, code: str) -> CodeCheck:
    """A code from the app, or a backup code (which is then used up)."""
    code = _normalised(code)
    with transaction.atomic():
        app = TOTPDevice.objects.filter(user=user, confirmed=True).select_for_update().first()
        backup = StaticDevice.objects.filter(user=user, confirmed=True).select_for_update().first()
        # The app's codes are all digits of its length; backup codes are eight letters and
        # digits.
        is_app_code = app is not None and code.isdigit() and len(code) == app.digits
        device: Device | None = app if is_app_code else backup
        if device is None:
            return CodeCheck(device=None)
        wait = _wait(device)
        if wait:
            return CodeCheck(device=None, wait_seconds=wait)
        if device.verify_token(code):
            return CodeCheck(device=device)
        return CodeCheck(device=None)


def two_factor_setup_wait(*, user: AbstractBaseUser) -> int:
    """Seconds before django-otp checks another code for the app being set up (it pauses
    after wrong ones, and refuses even the right code until then)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return _wait(device) if device is not None else 0


def two_factor_enrol(
    *, user: AbstractBaseUser, code: str, address: str | None = None
) -> list[str] | None:
    """Confirm the app being set up with a code it shows; returns the new backup codes, or
    None when the code is not right."""
    with transaction.atomic():
        device = two_factor_pending_app(user=user)
        if not device.verify_token(_normalised(code)):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        # One app per person: an older one (set up again after a lost phone) stops working.
        replaced, _ = TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        codes = _new_backup_codes(user)
        activity_record(
            kind=Kind.TWO_FACTOR_ENROLLED,
            summary=(
                "Set up a new authenticator app; the old one no longer works"
                if replaced
                else "Set up two-factor sign-in with an authenticator app"
            )
            + f"; {len(codes)} new backup codes.",
            actor=user,
            address=address,
        )
    return codes


def two_factor_replacing(*, user: AbstractBaseUser) -> bool:
    """Whether a new app is being set up beside the one in use (a new phone)."""
    devices = TOTPDevice.objects.filter(user=user)
    return devices.filter(confirmed=True).exists() and devices.filter(confirmed=False).exists()


def two_factor_start_replacement(*, user: AbstractBaseUser) -> None:
    """A fresh key for a new phone; the app in use keeps working until the new one is
    confirmed with a code."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    two_factor_pending_app(user=user)


def two_factor_cancel_replacement(*, user: AbstractBaseUser) -> None:
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()


def two_factor_reset(
    *, user: AbstractBaseUser, by: AbstractBaseUser, address: str | None = None
) -> bool:
    """An administrator takes away someone's app and backup codes (phone and codes lost):
    they set it up again at their next visit to Administration."""
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[0]
        removed += StaticDevice.objects.filter(user=user).delete()[0]
        if removed:
            activity_record(
                kind=Kind.TWO_FACTOR_RESET,
                summary=f"Reset two-factor sign-in for {user.get_username()}: their app and "
                "backup codes no longer work.",
                actor=by,
                address=address,
            )
    return bool(removed)


def _new_backup_codes(user: AbstractBaseUser) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(
        user=user, defaults={"name": BACKUP_DEVICE_NAME, "confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def two_factor_backup_codes(*, user: AbstractBaseUser) -> list[str]:
    """The unused backup codes (django-otp keeps them as they are, like the app's key)."""
    return list(
        StaticToken.objects.filter(device__user=user, device__confirmed=True)
        .order_by("pk")
        .values_list("token", flat=True)
    )


def two_factor_renew_backup_codes(*, user: AbstractBaseUser, address: str | None = None) -> None:
    with transaction.atomic():
        codes = _new_backup_codes(user)
        activity_record(
            kind=Kind.BACKUP_CODES_RENEWED,
            summary=f"Replaced the backup codes with {len(codes)} new ones.",
            actor=user,
            address=address,
        )


def two_factor_backup_code_used(*, user: AbstractBaseUser, address: str | None = None) -> None:
    left = len(two_factor_backup_codes(user=user))
    activity_record(
        kind=Kind.BACKUP_CODE_USED,
        summary=f"Signed in with a backup code; {left} left.",
        actor=user,
        address=address,
    )


def two_factor_codes_show_once(*, session: SessionBase) -> None:
    """Let this session see the backup codes once: they were just made in it."""
    session[SHOW_CODES] = time.time()


def two_factor_codes_may_show(*, session: SessionBase) -> bool:
    """Whether the backup codes may be shown now; only once after they were made, so that
    a session found signed in later cannot read them."""
    made = session.pop(SHOW_CODES, None)
    return isinstance(made, int | float) and time.time() - made <= SHOW_CODES_SECONDS
