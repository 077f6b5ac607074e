"""Password change for the signed-in user, and password reset by e-mail through the outbox:
Django's own views, with the reset form rate-limited (each request sends mail)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

RESETS_PER_ADDRESS = 3
RESET_WINDOW_SECONDS = 15 * 60


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """At most three reset mails per client address a quarter of an hour: the form sends
    mail to whatever address is typed, and must not become a way to flood a mailbox."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = f"password-reset:{request.META.get('REMOTE_ADDR', '')}"
        cache.add(key, 0, timeout=RESET_WINDOW_SECONDS)
        if cache.incr(key) > RESETS_PER_ADDRESS:
            messages.error(
                request, "Too many reset requests from here: try again in a quarter of an hour."
            )
            return redirect("password_reset")
        return super().post(request, *args, **kwargs)
