"""Error reports that never show secrets, in development too."""

from __future__ import annotations

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django cleans sensitive variables, POST fields and settings only when DEBUG is off;
    the development page (`make run` has DEBUG on) must not show the client secret either."""

    def is_active(self, request: HttpRequest | None) -> bool:
        return True
