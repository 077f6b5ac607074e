"""Defence in depth in the browser: a strict CSP on every page, the headers scanners expect,
sessions that end, and a real browser that finds no CSP violation anywhere."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from sei_admin import middleware
from sei_admin.celery import app
from smtp_settings import outbox
from smtp_settings.models import Delivery, ValidationRun

from .browser import sign_in
from .sandbox.world import SENDER
from .test_sending import save

REQUIRED_CSP = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
    "report-uri /csp-report/",
)


def admin_routes(sandbox: Any, client: Client) -> list[str]:
    """Every page and JSON endpoint, with a saved configuration, a run and a message."""
    save(sandbox.form_values())
    mail.send_mail("Hello", "Body", SENDER, ["it@x.example"])
    response = client.post(
        reverse("smtp_settings:validate"), sandbox.form_values(), HTTP_ACCEPT="application/json"
    )
    run = response.json()
    email_id = Delivery.objects.get().pk
    return [
        reverse("home"),
        reverse("administration"),
        reverse("smtp_settings:manage"),
        run["run_url"],
        run["status_url"],
        reverse("smtp_settings:outbox"),
        reverse("smtp_settings:outbox_message", args=[email_id]),
        reverse("accounts:users"),
        reverse("accounts:user_add"),
        reverse("activity"),
        reverse("accounts:two_factor"),
    ]


@pytest.fixture
def _queueing(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


@pytest.mark.django_db
@pytest.mark.usefixtures("_queueing")
def test_every_route_sends_the_csp_and_the_security_headers(
    sandbox: Any, admin_client: Client
) -> None:
    routes = [*admin_routes(sandbox, admin_client), reverse("login"), "/healthz"]
    for route in routes:
        client = Client() if route == reverse("login") else admin_client
        accept = "application/json" if "json" in route else "text/html,*/*"
        response = client.get(route, HTTP_ACCEPT=accept)
        assert response.status_code in (200, 503), route
        policy = response.headers["Content-Security-Policy"]
        for directive in REQUIRED_CSP:
            assert directive in policy, (route, directive)
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert "unsafe" not in directives["script-src"], route
        if route != "/healthz":  # the library's status page keeps its <style> block
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, route
        assert response.headers["Referrer-Policy"] == "same-origin", route
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin", route
        assert "camera=()" in response.headers["Permissions-Policy"], route
        assert "geolocation=()" in response.headers["Permissions-Policy"], route
        assert "no-store" in response.headers["Cache-Control"], route
        assert response.headers["X-Frame-Options"] == "DENY", route


@pytest.mark.django_db
def test_static_files_may_be_cached(admin_client: Client) -> None:
    response = admin_client.get("/static/css/console.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


# -- sessions that end -----------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    class Clock:
        now = 1_900_000_000.0

        def advance(self, seconds: float) -> None:
            self.now += seconds

    moved = Clock()
    monkeypatch.setattr(middleware.time, "time", lambda: moved.now)
    return moved


@pytest.mark.django_db
def test_an_idle_session_ends_and_sign_in_returns_to_the_page(
    admin_client: Client, clock: Any, settings: Any
) -> None:
    settings.SEI_SESSION_IDLE_MINUTES = 30
    manage = reverse("smtp_settings:manage")
    assert admin_client.get(manage).status_code == 200
    clock.advance(29 * 60)
    assert admin_client.get(manage).status_code == 200  # activity keeps it alive
    clock.advance(29 * 60)
    assert admin_client.get(manage).status_code == 200
    clock.advance(31 * 60)
    response = admin_client.get(manage)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert "expired=idle" in response.url and "next=%2Fadministration%2Fsmtp%2F" in response.url
    page = Client().get(response.url).content.decode()
    assert 'id="signed-out-idle"' in page and 'value="/administration/smtp/"' in page
    # The session is gone on the server too, not only for this request.
    assert admin_client.get(manage).status_code == 302


@pytest.mark.django_db
def test_a_session_ends_after_its_lifetime_however_busy(
    admin_client: Client, clock: Any, settings: Any
) -> None:
    settings.SEI_SESSION_MAX_HOURS = 12
    home = reverse("home")
    assert admin_client.get(home).status_code == 200
    for _ in range(12 * 4 + 1):
        clock.advance(15 * 60)
        response = admin_client.get(home)
    assert response.status_code == 302 and "expired=lifetime" in response.url


@pytest.mark.django_db
def test_json_requests_of_an_ended_session_get_401(admin_client: Client, clock: Any) -> None:
    admin_client.get(reverse("home"))
    clock.advance(3 * 3600)
    response = admin_client.get(reverse("session_keepalive"), HTTP_ACCEPT="application/json")
    assert response.status_code == 401 and response.json()["signed_out"] == "idle"


@pytest.mark.django_db
def test_signing_out_ends_the_session_on_the_server(admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    stolen = client.cookies["sessionid"].value
    client.post(reverse("logout"))
    assert not Session.objects.filter(session_key=stolen).exists()
    thief = Client()
    thief.cookies["sessionid"] = stolen
    assert thief.get(reverse("administration")).status_code == 302


@pytest.mark.django_db
def test_changing_the_password_ends_the_other_sessions(admin_user: User) -> None:
    laptop, phone = Client(), Client()
    laptop.force_login(admin_user)
    phone.force_login(admin_user)
    admin_user.set_password("a brand new passphrase 9")
    admin_user.save()
    assert phone.get(reverse("administration")).status_code == 302


# -- CSP reports -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_csp_reports_are_logged_without_queries_and_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache.clear()
    client = Client()
    report = {
        "csp-report": {
            "document-uri": "http://console.example/administration/smtp/?email=someone@x.example",
            "violated-directive": "script-src-elem",
            "blocked-uri": "https://evil.example/x.js?session=abc",
        }
    }
    caplog.set_level(logging.WARNING, logger="sei_admin.csp")
    response = client.post(
        reverse("csp_report"), json.dumps(report), content_type="application/csp-report"
    )
    assert response.status_code == 204
    assert "script-src-elem" in caplog.text and "https://evil.example/x.js" in caplog.text
    assert "someone@x.example" not in caplog.text and "session=abc" not in caplog.text
    statuses = {
        client.post(
            reverse("csp_report"), json.dumps(report), content_type="application/csp-report"
        ).status_code
        for _ in range(40)
    }
    assert 429 in statuses


# -- a real browser under the policy ---------------------------------------------------------

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_queueing")
def test_no_page_violates_the_policy_in_a_real_browser(
    live_server: Any, page: Any, sandbox: Any
) -> None:
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    save(sandbox.form_values())
    mail.send_mail("Hello", "Body", SENDER, ["it@x.example"])
    outbox.outbox_deliver_due()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(COLLECT_VIOLATIONS)

    page.goto(f"{live_server.url}/login/")
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    visited = []
    for path in (
        "/",
        "/administration/",
        "/administration/smtp/",
        "/administration/smtp/outbox/",
        f"/administration/smtp/outbox/{Delivery.objects.get().pk}/",
        "/account/password/",
        "/administration/users/",
        "/administration/users/add/",
        "/administration/activity/",
        "/account/two-factor/",
    ):
        page.goto(f"{live_server.url}{path}")
        visited.append((path, page.evaluate("window.__cspViolations")))
    # Validate's live progress runs under the policy too, and then its run page.
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        page.goto(f"{live_server.url}/administration/smtp/")
        page.get_by_role("button", name="Validate").click()
        page.locator("#run-verdict.verdict-passed").wait_for(timeout=30_000)
    visited.append(("validate", page.evaluate("window.__cspViolations")))
    run = ValidationRun.objects.get()
    page.goto(f"{live_server.url}/administration/smtp/runs/{run.pk}/")
    visited.append(("run page", page.evaluate("window.__cspViolations")))
    page.goto(f"{live_server.url}/healthz")
    visited.append(("healthz", page.evaluate("window.__cspViolations")))

    assert all(not violations for _, violations in visited), visited
    assert not [text for text in console if "Content Security Policy" in text], console
