"""Step 5's PowerShell for Graph (issue 20 point 5): RBAC for Applications limits the app
to the listed mailboxes; nothing typed into the console runs as code."""

from __future__ import annotations

from datetime import date

from smtp_settings.assistant.graph_script import graph_scope_script


def test_the_script_scopes_application_mail_send_to_the_listed_mailboxes() -> None:
    script = graph_scope_script(
        tenant_id="3b1f5a20-7c41-4e2a-9d55-5a9d1e000001",
        client_id="6a4e0c52-91d3-4f7b-8e1a-5a9d1e000002",
        sp_object_id="0f0e0d0c-0000-4000-8000-000000000001",
        mailboxes=["notifications@contoso.example", "o'brien@contoso.example"],
        written_on=date(2026, 12, 4),
    )
    assert "New-ManagementScope -Name $ScopeName -RecipientRestrictionFilter $filter" in script
    assert '-Role "Application Mail.Send" -CustomResourceScope $ScopeName' in script
    # Run again with more mailboxes, it updates the scope and assigns the role only once.
    lines = script.splitlines()
    new = next(i for i, line in enumerate(lines) if "New-ManagementRoleAssignment" in line)
    assert lines[new - 1] == "if (-not $assigned) {"
    assert any(line.startswith("$assigned = Get-ManagementRoleAssignment") for line in lines)
    assert "as ANY mailbox in the tenant" in script
    assert "    'notifications@contoso.example'" in script
    assert "    'o''brien@contoso.example'" in script  # a quote cannot end the literal
