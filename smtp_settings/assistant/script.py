"""What the assistant writes out for the administrator: the admin consent URL and the
Exchange Online PowerShell script. Plain values in, text out.

Every value that goes into the script is a single-quoted PowerShell literal
(``powershell_quote``): nothing typed into the console can run as code there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from urllib.parse import urlencode

from smtp_settings.validation.diagnosis import powershell_quote

OBJECT_ID_PLACEHOLDER = "<ENTERPRISE_APP_OBJECT_ID>"
SCRIPT_FILENAME = "sei-exchange-smtp-setup.ps1"


def admin_consent_url(
    *, login_host: str, tenant: str, client_id: str, scope: str, redirect_uri: str, state: str
) -> str:
    """The documentation's ``/v2.0/adminconsent`` address for this tenant and app.

    ``state`` comes back with Entra's answer: an answer without this session's value was
    not started here, and is ignored."""
    query = urlencode(
        {"client_id": client_id, "scope": scope, "redirect_uri": redirect_uri, "state": state}
    )
    return f"https://{login_host}/{tenant}/v2.0/adminconsent?{query}"


def exchange_script(
    *,
    tenant_id: str,
    client_id: str,
    sp_object_id: str,
    mailboxes: Sequence[str],
    written_on: date,
    display_name: str = "SEI Administration SMTP",
) -> str:
    """Register the app's service principal in Exchange Online (once) and give it
    FullAccess on each mailbox, saying what it did."""
    mailbox_lines = "\n".join(f"    {powershell_quote(mailbox)}" for mailbox in mailboxes)
    lines = [
        "# Exchange Online: let the SEI Administration app send mail over SMTP with OAuth 2.0.",
        f"# Written by SEI Administration's setup assistant on {written_on.isoformat()}.",
        "# Run it in PowerShell as an Exchange administrator. It signs in to Exchange Online,",
        "# registers the app's service principal (once), and gives that service principal",
        "# FullAccess on each mailbox listed below. Running it again changes nothing more.",
        "",
        "$ErrorActionPreference = 'Stop'",
        "",
        f"$TenantId = {powershell_quote(tenant_id)}",
        f"$AppId = {powershell_quote(client_id)}",
        "# Entra ID > Enterprise applications > the app > Overview > Object ID",
        "# (not the Object ID shown under App registrations).",
        f"$EnterpriseAppObjectId = {powershell_quote(sp_object_id or OBJECT_ID_PLACEHOLDER)}",
        f"$DisplayName = {powershell_quote(display_name)}",
        "$Mailboxes = @(",
        mailbox_lines,
        ")",
        "",
        f"if ($EnterpriseAppObjectId -eq {powershell_quote(OBJECT_ID_PLACEHOLDER)}) {{",
        "    throw 'Put the Enterprise application Object ID into $EnterpriseAppObjectId first.'",
        "}",
        "",
        "if (-not (Get-Module -ListAvailable -Name ExchangeOnlineManagement)) {",
        "    Write-Host 'Installing the ExchangeOnlineManagement module for this user...'",
        "    Install-Module -Name ExchangeOnlineManagement -Scope CurrentUser",
        "}",
        "Import-Module ExchangeOnlineManagement",
        "Connect-ExchangeOnline -Organization $TenantId",
        "",
        "$servicePrincipal = Get-ServicePrincipal | Where-Object { $_.AppId -eq $AppId }",
        "if ($servicePrincipal) {",
        '    Write-Host "The service principal of app $AppId is already registered."',
        "} else {",
        "    $servicePrincipal = New-ServicePrincipal -AppId $AppId "
        "-ObjectId $EnterpriseAppObjectId -DisplayName $DisplayName",
        '    Write-Host "Registered the service principal of app $AppId in Exchange Online."',
        "}",
        "# Get-ServicePrincipal's ID field: what Add-MailboxPermission takes as -User.",
        "$servicePrincipalId = @($servicePrincipal.Id, $servicePrincipal.Identity, "
        "$servicePrincipal.ObjectId) | Where-Object { $_ } | Select-Object -First 1",
        'Write-Host "Service principal ID: $servicePrincipalId"',
        "",
        "foreach ($mailbox in $Mailboxes) {",
        "    Add-MailboxPermission -Identity $mailbox -User $servicePrincipalId "
        "-AccessRights FullAccess | Out-Null",
        '    Write-Host "Granted FullAccess on $mailbox to the service principal."',
        "}",
        "",
        "Disconnect-ExchangeOnline -Confirm:$false",
        "Write-Host 'Done. Back in SEI Administration, check step 5 of the setup assistant.'",
        "",
    ]
    return "\n".join(lines)
