"""Sign-ins in the log: who, from where, and whether it worked (throttling is django-axes')."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

logger = logging.getLogger("sei_admin.signin")


def _address(request: HttpRequest | None) -> str:
    return request.META.get("REMOTE_ADDR", "?") if request is not None else "?"


@receiver(user_login_failed)
def _failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))
    # A name that is no user's may be a password typed in the wrong box: not logged.
    known = get_user_model().objects.filter(username=username).exists()
    logger.warning(
        "Failed sign-in for %s from %s",
        repr(username) if known else "an unknown user name",
        _address(request),
    )


@receiver(user_logged_in)
def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    logger.info("Signed in: %r from %s", user.get_username(), _address(request))
