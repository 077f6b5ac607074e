"""The sign-in in two steps for people with two-factor sign-in set up.

The password step does not sign in: it remembers who passed it, in the session, for a few
minutes. Only the right code signs in (``django.contrib.auth.login``), so the signal that
django-axes resets its failure count on fires after both factors, never between them: a
right password cannot wipe out the count of wrong codes.

Changes that a stolen session must not be able to make (the first app, a new phone, new
backup codes, a new password) ask for the account's password again. A wrong one there
counts as a failed sign-in too, and at the limit the session is signed out.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_response
from django.conf import settings
from django.contrib.auth import get_user_model, logout
from django.contrib.auth import login as auth_login
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.views.decorators.debug import sensitive_variables
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
    # django-otp marks the session as verified by this device when login() sees it here
    # (an attribute it adds to users at run time).
    user: Any = pending.user
    user.otp_device = device
    auth_login(request, pending.user, backend=pending.backend)


def signin_credentials(*, user: AbstractBaseUser) -> dict[str, str]:
    return {"username": user.get_username()}


class Recheck(enum.Enum):
    RIGHT = "right"
    WRONG = "wrong"
    # Too many failures for this user from this address: the session must end.
    LOCKED = "locked"


def signin_password_failed(*, request: HttpRequest, user: AbstractBaseUser, doing: str) -> bool:
    """A wrong current password from a signed-in session (``doing`` names the page, for the
    trail) counts as a failed sign-in for django-axes. Returns whether that locked the user
    out from this address."""
    user_login_failed.send(
        sender=__name__,
        credentials=signin_credentials(user=user),
        request=request,
        reauthentication=doing,
    )
    return bool(getattr(request, "axes_locked_out", False))


@sensitive_variables("password")
def signin_password_recheck(
    *, request: HttpRequest, user: AbstractBaseUser, password: str, doing: str
) -> Recheck:
    """Ask the signed-in user's password again before a change that would let a stolen
    session keep the account (the first app, a new phone, new backup codes)."""
    if signin_is_locked(request=request, credentials=signin_credentials(user=user)):
        return Recheck.LOCKED
    if password and user.check_password(password):
        return Recheck.RIGHT
    locked = signin_password_failed(request=request, user=user, doing=doing)
    return Recheck.LOCKED if locked else Recheck.WRONG


def signin_end_locked(*, request: HttpRequest, user: AbstractBaseUser) -> HttpResponse:
    """A signed-in session that reached the lock-out ends, like the sign-in would; the answer
    is django-axes' lock-out page."""
    credentials = signin_credentials(user=user)
    logout(request)
    return get_lockout_response(request, None, credentials)
