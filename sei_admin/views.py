"""Project-wide pages: home, the Administration index, Activity, the 403 page; CSP reports,
keep-alive."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.signin_activity import client_address
from activity.forms import ActivityFilterForm
from activity.service import activity_entries, activity_page
from smtp_settings.models import SmtpSettings
from smtp_settings.monitoring import alerts, status
from smtp_settings.permissions import (
    ADMINISTER_PERMISSION,
    administrator_required,
    second_factor_verified,
)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {
            "smtp": SmtpSettings.load(),
            "can_administer": request.user.has_perm(ADMINISTER_PERMISSION),
        },
    )


@administrator_required
def administration_index(request: HttpRequest) -> HttpResponse:
    snapshot = status.for_request(request)
    smtp = snapshot.row
    return render(
        request,
        "administration/index.html",
        {
            "smtp": smtp,
            "fallback_connection": snapshot.fallback if smtp.is_stored else None,
            "background": status.background(snapshot),
            "mail_state": status.mail_at_a_glance(snapshot=snapshot),
            "recipients": alerts.alert_recipients(settings_row=smtp),
            "two_factor_required": settings.SEI_REQUIRE_2FA,
            # A verified session has a second factor; no query needed to know that.
            "two_factor_verified": second_factor_verified(request.user),
        },
    )


ACTIVITY_PAGE_SIZE = 50


@administrator_required
@require_GET
def activity(request: HttpRequest) -> HttpResponse:
    """Who did what and when, newest first, filtered by person, kind and days."""
    form = ActivityFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    entries = activity_entries(
        actor_id=filters.get("person"),
        day_from=filters.get("day_from"),
        day_to=filters.get("day_to"),
        kind=filters.get("kind") or "",
    )
    before = request.GET.get("before", "")
    shown, older = activity_page(
        entries=entries, before=int(before) if before.isdigit() else None, size=ACTIVITY_PAGE_SIZE
    )
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "administration/activity.html",
        {
            "form": form,
            "entries": shown,
            "older": older,
            "paged": bool(before),
            "query": query.urlencode(),
        },
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


logger = logging.getLogger("sei_admin.csp")
CSP_REPORTS_PER_MINUTE = 30
_MAX_REPORT_BYTES = 16_384


def _printable(value: object, limit: int) -> str:
    # A report is anyone's text: no line breaks or control characters reach the log.
    return "".join(ch if ch.isprintable() else "?" for ch in str(value or ""))[:limit]


def _without_query(url: object) -> str:
    # Query strings and fragments can carry personal data: only where, not what.
    parts = urlsplit(_printable(url, 2000))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:300]


@csrf_exempt  # browsers send reports without a token
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    """Content-Security-Policy violations, logged by page and directive (rate-limited)."""
    client = client_address(request) or ""
    key = f"csp-report:{client}"
    cache.add(key, 0, timeout=60)
    if cache.incr(key) > CSP_REPORTS_PER_MINUTE or len(request.body) > _MAX_REPORT_BYTES:
        return HttpResponse(status=429)
    try:
        report = json.loads(request.body).get("csp-report", {})
    except (ValueError, AttributeError):
        return HttpResponse(status=400)
    if not isinstance(report, dict):
        return HttpResponse(status=400)
    logger.warning(
        "CSP violation: %s blocked %s on %s",
        _printable(report.get("violated-directive") or report.get("effective-directive"), 100),
        _without_query(report.get("blocked-uri")),
        _without_query(report.get("document-uri")),
    )
    return HttpResponse(status=204)


@login_required
def session_keepalive(request: HttpRequest) -> HttpResponse:
    """Nothing but a request: the page calls it while someone is working in a form."""
    return HttpResponse(status=204)
