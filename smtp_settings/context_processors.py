"""What every Administration page warns administrators of: held mail, an expiring secret,
a failing health check."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from smtp_settings.monitoring import status
from smtp_settings.permissions import ADMINISTER_PERMISSION


def mail_banners(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if not (
        user is not None
        and request.path.startswith("/administration/")
        and user.has_perm(ADMINISTER_PERMISSION)
    ):
        return {}
    # Lazy: a page that does not show the banners costs no query.
    return {"mail_banners": SimpleLazyObject(lambda: status.banners(status.for_request(request)))}
