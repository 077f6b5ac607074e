"""The README's sandbox table, typed into Manage SMTP in a real browser, passes Validate.

The table names the ports `make sandbox` listens on; this test's sandbox listens on free
ones, so only those two numbers are swapped. Everything else is typed as the README has it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth.models import User

from sei_admin.celery import app

from .browser import sign_in
from .sandbox.world import SECRET_EXPIRES

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def readme_table(after: str = "Then enter in Manage SMTP:") -> dict[str, str]:
    section = README.split(after, 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|$", section, flags=re.MULTILINE)
    return {label: value.strip("`") for label, value in rows if label not in ("field", "---")}


def test_the_readme_sandbox_values_pass_validate(live_server: Any, page: Any, sandbox: Any) -> None:
    table = readme_table()
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.goto(f"{live_server.url}/administration/smtp/")
    for label in ("SMTP Server", "Sender Email", "Client ID", "Client Secret", "Scopes"):
        page.get_by_label(label, exact=True).fill(table[label])
    page.get_by_label("Port", exact=True).fill(
        table["Port"].replace("8587", str(sandbox.exchange.port))
    )
    page.get_by_label("Token Endpoint", exact=True).fill(
        table["Token Endpoint"].replace(":8443/", f":{sandbox.entra.port}/")
    )
    assert table["Authentication Type"] == "OAuth 2.0"
    page.get_by_label("Authentication Type", exact=True).select_option(label="OAuth 2.0")
    assert "any date within the next 24 months" in table["Secret Expiration Date"]
    page.get_by_label("Secret Expiration Date", exact=True).fill(SECRET_EXPIRES)
    assert table["Use SSL/TLS, Use sender email"] == "on"
    assert page.get_by_label("Use SSL/TLS", exact=True).is_checked()
    assert page.get_by_label("Use sender email", exact=True).is_checked()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        page.get_by_role("button", name="Validate").click()
        page.locator("#run-verdict.verdict-passed").wait_for(timeout=30_000)
    assert page.locator("#run-verdict").inner_text() == "Passed"


def test_the_readmes_graph_values_pass_validate_with_a_test_send(
    live_server: Any, page: Any, sandbox: Any, settings: Any
) -> None:
    """The README's Graph table, as make run-with-sandbox allows its Graph Host."""
    table = readme_table(after="choose Send\nthrough **Microsoft Graph (OAuth 2.0)**, and enter")
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    sign_in(page, live_server.url, "ops", "a long passphrase 7")
    page.goto(f"{live_server.url}/administration/smtp/")
    page.get_by_label("Microsoft Graph (OAuth 2.0)").check()
    page.get_by_label("Graph Host", exact=True).fill(
        table["Graph Host"].replace(":8444", f":{sandbox.graph.port}")
    )
    for label in ("Sender Email", "Client ID", "Client Secret"):
        page.get_by_label(label, exact=True).fill(table[label])
    page.get_by_label("Token Endpoint", exact=True).fill(
        table["Token Endpoint"].replace(":8443/", f":{sandbox.entra.port}/")
    )
    page.get_by_label("Secret Expiration Date", exact=True).fill(SECRET_EXPIRES)
    assert "SMTP Server" not in table and "Scopes" not in table
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        page.get_by_role("button", name="Validate").click()
        page.locator("#run-verdict.verdict-passed").wait_for(timeout=30_000)
    assert "accepted a test message" in page.locator("#validation").inner_text()
    assert sandbox.graph.requests, "the test send went through the Graph stand-in"
