"""Who may use the Administration section: holders of the app's change permission who, when
``SEI_REQUIRE_2FA`` is on, signed in with their second factor. Who is an administrator is
said here once (``administrators``): the Users page, the last-administrator guard and the
alerts' recipients all ask it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

ADMINISTER_PERMISSION = "smtp_settings.change_smtpsettings"
# The accounts app's page that sets up or asks for the second factor (named, not imported:
# accounts depends on this module, not the other way round).
TWO_FACTOR_URL_NAME = "accounts:two_factor"


def administrators(*, active_only: bool = True) -> QuerySet[Any]:
    """Users holding the permission: superusers, holders of it, members of a group with it.
    Inactive ones too with ``active_only=False`` (the role outlives a deactivation)."""
    app_label, codename = ADMINISTER_PERMISSION.split(".")
    holds = Q(is_superuser=True)
    for through in ("user_permissions", "groups__permissions"):
        holds |= Q(
            **{f"{through}__codename": codename, f"{through}__content_type__app_label": app_label}
        )
    users = get_user_model().objects.filter(holds)
    if active_only:
        users = users.filter(is_active=True)
    return users.distinct()


def second_factor_verified(user: Any) -> bool:
    # django-otp's middleware gives every request's user is_verified().
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def _second_factor_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.SEI_REQUIRE_2FA and not second_factor_verified(request.user):
            return redirect_to_login(request.get_full_path(), reverse(TWO_FACTOR_URL_NAME))
        return view(request, *args, **kwargs)

    return checked


def administrator_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Anonymous users go to the login page; signed-in users without the permission get 403;
    administrators who still owe the second factor go to set it up or enter a code."""
    return login_required(
        permission_required(ADMINISTER_PERMISSION, raise_exception=True)(
            _second_factor_required(view)
        )
    )
