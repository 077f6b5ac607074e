"""Who may use the Administration section: holders of the app's change permission."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required

ADMINISTER_PERMISSION = "smtp_settings.change_smtpsettings"


def administrator_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Anonymous users go to the login page; signed-in users without the permission get 403."""
    return login_required(permission_required(ADMINISTER_PERMISSION, raise_exception=True)(view))
