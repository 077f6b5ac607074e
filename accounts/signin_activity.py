"""Sign-ins into the log and the activity trail: successes, wrong passwords and wrong codes
(throttling is django-axes'; its own lines mask who and where).

Wrong codes are sent as ``user_login_failed`` by the code step (with ``second_factor``),
and wrong current passwords from signed-in sessions (with ``reauthentication``, the page),
so that django-axes counts them with wrong passwords; this receiver tells them apart.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from activity.models import Kind
from activity.service import activity_record

logger = logging.getLogger("sei_admin.signin")


def client_address(request: HttpRequest | None) -> str | None:
    """The client's address, as every part of the console reads it (gunicorn's peer: the
    console is reached directly or through a proxy that sets it)."""
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


@receiver(user_logged_in, dispatch_uid="accounts.signin_activity.succeeded")
def _succeeded(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    logger.info("Signed in: %r from %s", user.get_username(), client_address(request) or "?")
    device = getattr(user, "otp_device", None)
    activity_record(
        kind=Kind.SIGNIN_SUCCEEDED,
        summary="Signed in with password and code." if device else "Signed in with password.",
        actor=user,
        address=client_address(request),
    )


@receiver(user_login_failed, dispatch_uid="accounts.signin_activity.failed")
def _failed(
    sender: Any,
    credentials: dict[str, Any],
    request: HttpRequest | None = None,
    second_factor: bool = False,
    reauthentication: str = "",
    **kwargs: Any,
) -> None:
    username = str(credentials.get("username", ""))
    # A name that is no user's may be a password typed in the wrong box: it is not kept.
    user = get_user_model().objects.filter(username=username).first() if username else None
    logger.warning(
        "Failed sign-in for %s from %s",
        repr(username) if user is not None else "an unknown user name",
        client_address(request) or "?",
    )
    locked = request is not None and getattr(request, "axes_locked_out", False)
    if reauthentication:
        kind = Kind.PASSWORD_WRONG
        summary = f"Wrong current password at {reauthentication}." + (
            " Locked after too many failures: the session was signed out." if locked else ""
        )
    elif locked:
        kind, summary = Kind.SIGNIN_FAILED, "Sign-in refused: locked after too many failures."
    elif second_factor:
        kind, summary = Kind.TWO_FACTOR_FAILED, "Wrong code at sign-in (the password was right)."
    elif user is None:
        kind, summary = Kind.SIGNIN_FAILED, "Failed sign-in with an unknown user name."
    else:
        kind, summary = Kind.SIGNIN_FAILED, "Failed sign-in: wrong password."
    activity_record(kind=kind, summary=summary, actor=user, address=client_address(request))
