"""Log filters that keep an idle console's log quiet: what is an answer, not an event."""

from __future__ import annotations

import logging

# A probe's 503 is /healthz's answer (the load balancer reads it), not a server error.
PROBE_PATHS = ("/healthz",)


class ExpectedResponses(logging.Filter):
    """Drops django.request's line for a health probe's 503 and for a form sent back with
    its errors (400): neither is a fault of the server, and both repeat."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        request = getattr(record, "request", None)
        path = getattr(request, "path", "")
        if status == 503 and path.startswith(PROBE_PATHS):
            return False
        return not (status == 400 and getattr(request, "method", "") == "POST")
