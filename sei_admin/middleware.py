"""Browser-facing defences every response gets: sessions that end, and the headers an
administration console is expected to send (the CSP itself comes from django-csp)."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

# Nothing the console does needs these browser features.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer", "camera", "display-capture", "geolocation", "gyroscope",
        "hid", "magnetometer", "microphone", "midi", "payment", "publickey-credentials-get",
        "serial", "usb", "xr-spatial-tracking",
    )
)  # fmt: skip

SESSION_STARTED = "sei_started"
SESSION_SEEN = "sei_seen"
# The last-seen time is written at most this often: not one session write per request.
_SEEN_RESOLUTION_SECONDS = 30


class SessionLifetimeMiddleware:
    """Ends a signed-in session after ``SEI_SESSION_IDLE_MINUTES`` without a request, or
    ``SEI_SESSION_MAX_HOURS`` after sign-in, whichever comes first. The next request goes
    to the sign-in page, which returns to where it was."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            expired = self._expired(request)
            if expired:
                logout(request)
                return self._to_sign_in(request, expired)
        return self.get_response(request)

    @staticmethod
    def _expired(request: HttpRequest) -> str:
        session = request.session
        now = time.time()
        started = session.setdefault(SESSION_STARTED, now)
        seen = session.get(SESSION_SEEN, now)
        if now - seen > settings.SEI_SESSION_IDLE_MINUTES * 60:
            return "idle"
        if now - started > settings.SEI_SESSION_MAX_HOURS * 3600:
            return "lifetime"
        if now - seen >= _SEEN_RESOLUTION_SECONDS or SESSION_SEEN not in session:
            session[SESSION_SEEN] = now
        return ""

    @staticmethod
    def _to_sign_in(request: HttpRequest, reason: str) -> HttpResponse:
        query = {"expired": reason}
        if request.method == "GET":
            query["next"] = request.get_full_path()
        url = f"{reverse(settings.LOGIN_URL)}?{urlencode(query)}"
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse({"signed_out": reason, "login_url": url}, status=401)
        return HttpResponseRedirect(url)


class SecurityHeadersMiddleware:
    """Permissions-Policy everywhere; no-store on everything behind the sign-in and on JSON,
    so that neither shared caches nor the back-forward cache keep those pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if not request.path.startswith(f"/{settings.STATIC_URL.strip('/')}/"):
            add_never_cache_headers(response)
        return response
