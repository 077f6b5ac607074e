"""What the assistant writes out for the administrator: the admin consent URL and the
Exchange Online PowerShell script. Plain values in, text out.

Every value that goes into the script is a single-quoted PowerShell literal
(``powershell_quote``): nothing typed into the console can run as code there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from urllib.parse import urlencode

from smtp_settings.mail import microsoft
from smtp_settings.powershell import powershell_quote, service_principal_id

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
        f"$servicePrincipalId = {service_principal_id('$servicePrincipal')}",
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


def exchange_script_for_run(
    *, candidate: Mapping[str, Any], outputs: Mapping[str, Any], written_on: date
) -> str:
    """The same script for the values a Validate run checked: its tenant and app, the
    Object ID its token carried, its sender and further mailboxes."""
    mailboxes = [str(candidate.get("sender_email") or "")]
    mailboxes += [str(address) for address in candidate.get("mailboxes") or []]
    return exchange_script(
        tenant_id=microsoft.tenant_from_token_endpoint(str(candidate.get("token_endpoint"))) or "",
        client_id=str(candidate.get("client_id") or ""),
        sp_object_id=str(outputs.get("sp_object_id") or ""),
        mailboxes=[address for address in mailboxes if address],
        written_on=written_on,
    )
