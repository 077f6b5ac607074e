"""What every Administration page shows administrators about mail: messages held, and why."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from smtp_settings.outbox import service as outbox
from smtp_settings.permissions import ADMINISTER_PERMISSION


def mail_status(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if not (
        user is not None
        and request.path.startswith("/administration/")
        and user.has_perm(ADMINISTER_PERMISSION)
    ):
        return {}
    # Lazy: a page that does not show the banner costs no query.
    return {"mail_held": SimpleLazyObject(lambda: outbox.outbox_held() or {})}
