"""The sign-in in two steps for people with two-factor sign-in set up.

The password step does not sign in: it remembers who passed it, in the session, for a few
minutes. Only the right code signs in (``django.contrib.auth.login``), so the signal that
django-axes resets its failure count on fires after both factors, never between them: a
right password cannot wipe out the count of wrong codes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest
from django_otp.models import Device

PENDING = "sei_signin_pending"


@dataclass(frozen=True)
class PendingSignIn:
    user: AbstractBaseUser
    backend: str
    next_url: str

    @property
    def credentials(self) -> dict[str, str]:
        # What django-axes keys its count on (with the address): the user name, never a code.
        return {"username": self.user.get_username()}


def signin_pending_start(*, request: HttpRequest, user: AbstractBaseUser, next_url: str) -> None:
    request.session.cycle_key()
    request.session[PENDING] = {
        "user": user.pk,
        "backend": getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[-1]),
        "next": next_url,
        "at": time.time(),
    }


def signin_pending(*, request: HttpRequest) -> PendingSignIn | None:
    """Who passed the password step in this session, unless that was too long ago or the
    account has been deactivated since."""
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    if time.time() - float(pending.get("at", 0)) > settings.SEI_SIGNIN_CODE_MINUTES * 60:
        signin_pending_forget(request=request)
        return None
    user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()
    if user is None:
        signin_pending_forget(request=request)
        return None
    return PendingSignIn(user=user, backend=pending["backend"], next_url=pending["next"])


def signin_pending_forget(*, request: HttpRequest) -> None:
    request.session.pop(PENDING, None)


def signin_is_locked(*, request: HttpRequest, credentials: dict[str, str]) -> bool:
    return AxesProxyHandler.is_locked(request, credentials)


def signin_code_failed(*, request: HttpRequest, credentials: dict[str, str]) -> bool:
    """A wrong code counts as a failed sign-in for django-axes (and the log and the trail).
    Returns whether that locked the user out from this address."""
    user_login_failed.send(
        sender=__name__, credentials=credentials, request=request, second_factor=True
    )
    return bool(getattr(request, "axes_locked_out", False))


def signin_complete(*, request: HttpRequest, pending: PendingSignIn, device: Device) -> None:
    signin_pending_forget(request=request)
    # django-otp marks the session as verified by this device when login() sees it here.
    pending.user.otp_device = device  # type: ignore[attr-defined]
    auth_login(request, pending.user, backend=pending.backend)
