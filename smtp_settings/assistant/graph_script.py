"""Step 5 for Send through: Microsoft Graph: the Exchange Online PowerShell that limits the
app to the listed mailboxes (RBAC for Applications). Plain values in, text out.

Why it matters: Graph's Mail.Send application permission, consented in Entra ID, lets the
app send as ANY mailbox in the tenant. RBAC for Applications assigns the role "Application
Mail.Send" in Exchange Online with a management scope instead, so the app can send only
as the mailboxes in that scope (the Entra ID grant is then removed, or it still applies
tenant-wide). Every value is a single-quoted PowerShell literal (``powershell_quote``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from smtp_settings.assistant.script import OBJECT_ID_PLACEHOLDER
from smtp_settings.powershell import powershell_quote

GRAPH_SCRIPT_FILENAME = "sei-exchange-graph-scope.ps1"


def graph_scope_script(
    *,
    tenant_id: str,
    client_id: str,
    sp_object_id: str,
    mailboxes: Sequence[str],
    written_on: date,
    scope_name: str = "SEI Administration mailboxes",
    display_name: str = "SEI Administration Graph",
) -> str:
    mailbox_lines = "\n".join(f"    {powershell_quote(mailbox)}" for mailbox in mailboxes)
    return "\n".join(
        [
            "# Exchange Online: let the SEI Administration app send through Microsoft Graph",
            "# only as the mailboxes below (RBAC for Applications).",
            f"# Written by SEI Administration's setup assistant on {written_on.isoformat()}.",
            "# Without such a scope, Graph's Mail.Send application permission lets the app send",
            "# as ANY mailbox in the tenant. After this script, remove the Mail.Send grant under",
            "# Entra ID > App registrations > API permissions, or it still applies tenant-wide.",
            "",
            "$ErrorActionPreference = 'Stop'",
            f"$TenantId = {powershell_quote(tenant_id)}",
            f"$AppId = {powershell_quote(client_id)}",
            f"$EnterpriseAppObjectId = {powershell_quote(sp_object_id or OBJECT_ID_PLACEHOLDER)}",
            f"$ScopeName = {powershell_quote(scope_name)}",
            f"$DisplayName = {powershell_quote(display_name)}",
            "$Mailboxes = @(",
            mailbox_lines,
            ")",
            "",
            f"if ($EnterpriseAppObjectId -eq {powershell_quote(OBJECT_ID_PLACEHOLDER)}) {{",
            "    throw 'Put the Enterprise application Object ID into $EnterpriseAppObjectId.'",
            "}",
            "Import-Module ExchangeOnlineManagement",
            "Connect-ExchangeOnline -Organization $TenantId",
            "",
            "$sp = Get-ServicePrincipal | Where-Object { $_.AppId -eq $AppId }",
            "if (-not $sp) {",
            "    $sp = New-ServicePrincipal -AppId $AppId -ObjectId $EnterpriseAppObjectId "
            "-DisplayName $DisplayName",
            "}",
            "# The scope's filter, built here from the list (each address quoted for OPATH).",
            "$filter = ($Mailboxes | ForEach-Object { \"PrimarySmtpAddress -eq '$($_ -replace "
            "\"'\", \"''\")'\" }) -join ' -or '",
            "if (Get-ManagementScope -Identity $ScopeName -ErrorAction SilentlyContinue) {",
            "    Set-ManagementScope -Identity $ScopeName -RecipientRestrictionFilter $filter",
            "} else {",
            "    New-ManagementScope -Name $ScopeName -RecipientRestrictionFilter $filter | "
            "Out-Null",
            "}",
            "# Run again (more mailboxes): the scope above changed; the assignment stays. The",
            "# cmdlet has no -App filter: the assignee is matched by any name the app has.",
            "$names = @($sp.Identity, $sp.ObjectId, $sp.AppId, $sp.DisplayName) | "
            'Where-Object { $_ } | ForEach-Object { "$_" }',
            '$assigned = Get-ManagementRoleAssignment -Role "Application Mail.Send" | '
            'Where-Object { $names -contains "$($_.RoleAssigneeName)" }',
            "if (-not $assigned) {",
            '    New-ManagementRoleAssignment -App $sp.AppId -Role "Application Mail.Send" '
            "-CustomResourceScope $ScopeName | Out-Null",
            "}",
            "Write-Host \"The app may send through Graph as: $($Mailboxes -join ', ')\"",
            "# Check one: Test-ServicePrincipalAuthorization -Identity $AppId -Resource <MAILBOX>",
            "Disconnect-ExchangeOnline -Confirm:$false",
            "",
        ]
    )
