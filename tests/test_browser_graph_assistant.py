"""Choosing Microsoft Graph in the setup assistant, in a real browser on the sandbox: step 2
takes Mail.Send, the checks read a Graph token, step 5 writes the RBAC for Applications
PowerShell, and Manage SMTP's Validate passes with a test send through Graph (issue 20)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .sandbox.directory import EXCHANGE_RESOURCE, GRAPH_RESOURCE
from .sandbox.world import CLIENT_ID, CLIENT_SECRET, SECRET_EXPIRES, SENDER, TENANT_DOMAIN
from .test_browser_setup_assistant import CHECK_TIMEOUT, console, passed

__all__ = ["console"]  # the fixture, shared with the SMTP walk-through

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_choosing_graph_in_the_assistant_through_a_passing_validate(
    console: Any, sandbox: Any, settings: Any, tmp_path: Any
) -> None:
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    # The app holds Graph's Mail.Send only: SMTP's permission would not do.
    sandbox.app.roles = {GRAPH_RESOURCE: ["Mail.Send"], EXCHANGE_RESOURCE: []}
    page = console
    page.get_by_role("link", name="Set up Microsoft 365").first.click()
    page.wait_for_url("**/administration/smtp/setup/")
    page.get_by_label("Microsoft cloud", exact=True).select_option(f"host:{sandbox.authority_host}")
    page.get_by_label("Directory (tenant) ID", exact=True).fill(TENANT_DOMAIN)
    page.get_by_label("Application (client) ID", exact=True).fill(CLIENT_ID)
    page.get_by_role("button", name="Save and check the tenant").click()
    passed(page, 1)

    # 2. Microsoft Graph instead of SMTP: the permission to add is Graph's Mail.Send.
    page.get_by_label("Microsoft Graph: Microsoft Graph > Mail.Send").check()
    page.get_by_role("button", name="Save the choice").click()
    assert "Mail.Send" in page.locator("#how-graph").inner_text()
    assert "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default" in (
        page.locator("#consent-url").get_attribute("href") or ""
    )

    page.get_by_label("Client secret Value", exact=True).fill(CLIENT_SECRET)
    page.get_by_label("Secret Expiration Date", exact=True).fill(SECRET_EXPIRES)
    page.get_by_role("button", name="Save and check the secret").click()
    passed(page, 4)
    passed(page, 3)
    assert "Mail.Send" in page.locator("#step-3 .check").inner_text()

    # 5. The mailbox, and the PowerShell that limits the app to it: no SMTP server to give,
    # Graph's role named (not SMTP's FullAccess), and only what the check proved claimed.
    step5 = page.locator("#step-5")
    assert step5.get_by_label("SMTP Server", exact=True).count() == 0
    assert step5.get_by_label("Port", exact=True).count() == 0
    assert "FullAccess" not in step5.inner_text()
    page.get_by_label("Sender Email", exact=True).fill(SENDER)
    page.get_by_role("button", name="Save and check the token").click()
    passed(page, 5)
    result = page.locator("#step-5-result").inner_text()
    assert "not proven" in result and "Exchange accepts the sign-in" not in result
    assert "only proven by a send" in page.locator("#step-5 .check").inner_text()
    assert "as any mailbox in the tenant" in page.locator("#graph-scope-why").inner_text()
    assert "Application Mail.Send" in page.locator("#graph-scope-why").inner_text()
    assert page.locator("#sp-object-id").inner_text() == sandbox.app.service_principal_id
    with page.expect_download() as download_info:
        page.locator("#download-script").click()
    download = download_info.value
    assert download.suggested_filename == "sei-exchange-graph-scope.ps1"
    download.save_as(tmp_path / "graph.ps1")
    script = (tmp_path / "graph.ps1").read_text()
    assert '-Role "Application Mail.Send" -CustomResourceScope $ScopeName' in script
    assert f"    '{SENDER}'" in script
    assert f"$EnterpriseAppObjectId = '{sandbox.app.service_principal_id}'" in script

    # Use these settings: Manage SMTP with Graph chosen, the SMTP-only fields hidden.
    page.get_by_role("button", name="Use these settings").click()
    page.wait_for_url("**/administration/smtp/?from=setup*")
    page.locator("#run-verdict.verdict-passed").wait_for(timeout=CHECK_TIMEOUT)
    assert page.get_by_label("Microsoft Graph (OAuth 2.0)").is_checked()
    assert page.locator("#row_smtp_server").is_hidden()
    assert page.locator("#row_port").is_hidden()
    page.get_by_label("Graph Host", exact=True).fill(sandbox.graph.host)
    page.get_by_label("Send test email to", exact=False).fill("it@elsewhere.example")
    page.get_by_role("button", name="Validate").click()
    deadline = time.monotonic() + CHECK_TIMEOUT / 1000
    while not sandbox.graph.requests and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    page.locator("#run-verdict.verdict-passed").wait_for(timeout=CHECK_TIMEOUT)
    assert "Test send" in page.locator("#validation").inner_text()
    envelope, _ = sandbox.exchange.delivered[-1]
    assert envelope.rcpt_tos == ["it@elsewhere.example"]
    assert CLIENT_SECRET not in page.content()
