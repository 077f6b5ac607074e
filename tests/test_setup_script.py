"""The setup assistant's Exchange Online PowerShell and admin consent address.

No PowerShell parser is installed here, so the quoting is checked with PowerShell's own
rule for single-quoted strings: a literal ends at a single quote (straight or typographic)
that is not doubled, and nothing inside it is ever expanded or run.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from smtp_settings.assistant.script import (
    OBJECT_ID_PLACEHOLDER,
    admin_consent_url,
    exchange_script,
)

QUOTES = "'\u2018\u2019\u201a\u201b"
TENANT = "3b1f5a20-7c41-4e2a-9d55-5a9d1e000001"
APP = "6a4e0c52-91d3-4f7b-8e1a-5a9d1e000002"
OBJECT_ID = "0f6d2c11-2222-4333-8444-955566667777"
HOSTILE = [
    '"$(Get-Date)"@contoso.example',
    "o'brien@contoso.example",
    "o\u2019brien@contoso.example",
    "a';Remove-Item -Recurse C:\\;'@contoso.example",
    "`$env:PATH@contoso.example",
]


def read_literal(text: str) -> tuple[str, str]:
    """One single-quoted PowerShell literal at the start of ``text``: (value, the rest)."""
    assert text and text[0] in QUOTES, text
    value, index = [], 1
    while index < len(text):
        char = text[index]
        if char in QUOTES:
            if index + 1 < len(text) and text[index + 1] in QUOTES:
                value.append(char)
                index += 2
                continue
            return "".join(value), text[index + 1 :]
        value.append(char)
        index += 1
    raise AssertionError(f"unterminated literal: {text!r}")


def script_for(mailboxes: list[str], **overrides: str) -> str:
    values = {"tenant_id": TENANT, "client_id": APP, "sp_object_id": OBJECT_ID, **overrides}
    return exchange_script(mailboxes=mailboxes, written_on=date(2026, 11, 27), **values)


def assignment(script: str, variable: str) -> str:
    line = next(line for line in script.splitlines() if line.startswith(f"{variable} = "))
    value, rest = read_literal(line.removeprefix(f"{variable} = "))
    assert rest == "", f"something follows the literal: {rest!r}"
    return value


def mailbox_literals(script: str) -> list[str]:
    lines = script.splitlines()
    start = lines.index("$Mailboxes = @(")
    end = lines.index(")", start)
    found = []
    for line in lines[start + 1 : end]:
        value, rest = read_literal(line.strip())
        assert rest == "", f"something follows the literal: {rest!r}"
        found.append(value)
    return found


def test_the_script_holds_the_tenant_app_object_id_and_mailboxes() -> None:
    script = script_for(["notifications@contoso.example", "sales@contoso.example"])
    assert assignment(script, "$TenantId") == TENANT
    assert assignment(script, "$AppId") == APP
    assert assignment(script, "$EnterpriseAppObjectId") == OBJECT_ID
    assert mailbox_literals(script) == ["notifications@contoso.example", "sales@contoso.example"]
    # The documentation's order: connect, register, read the ID, grant, and say so.
    order = [
        "Connect-ExchangeOnline -Organization $TenantId",
        "New-ServicePrincipal -AppId $AppId -ObjectId $EnterpriseAppObjectId",
        "$servicePrincipalId =",
        "Add-MailboxPermission -Identity $mailbox -User $servicePrincipalId -AccessRights "
        "FullAccess",
        'Write-Host "Granted FullAccess on $mailbox',
    ]
    positions = [script.index(text) for text in order]
    assert positions == sorted(positions)
    assert "$ErrorActionPreference = 'Stop'" in script


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_mailboxes_stay_inert_literals(hostile: str) -> None:
    script = script_for(["plain@contoso.example", hostile])
    assert mailbox_literals(script) == ["plain@contoso.example", hostile]
    # Nowhere else: a comment or a double-quoted string would expand or end early.
    outside = script.replace(f"    {_quoted(hostile)}\n", "")
    assert hostile not in outside


@pytest.mark.parametrize("hostile", HOSTILE)
def test_every_interpolated_value_is_quoted(hostile: str) -> None:
    script = script_for(["a@contoso.example"], tenant_id=hostile, client_id=hostile)
    assert assignment(script, "$TenantId") == hostile
    assert assignment(script, "$AppId") == hostile


def test_without_the_object_id_the_script_stops_before_changing_anything() -> None:
    script = script_for(["a@contoso.example"], sp_object_id="")
    assert assignment(script, "$EnterpriseAppObjectId") == OBJECT_ID_PLACEHOLDER
    guard = script.index("if ($EnterpriseAppObjectId -eq")
    assert guard < script.index("throw") < script.index("Connect-ExchangeOnline")


def test_admin_consent_url_follows_the_documentation() -> None:
    url = admin_consent_url(
        login_host="login.microsoftonline.com",
        tenant=TENANT,
        client_id=APP,
        scope="https://outlook.office365.com/.default",
        redirect_uri="https://console.example/administration/smtp/setup/",
        state="session-value",
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0/adminconsent"
    )
    assert parse_qs(parts.query) == {
        "client_id": [APP],
        "scope": ["https://outlook.office365.com/.default"],
        "redirect_uri": ["https://console.example/administration/smtp/setup/"],
        "state": ["session-value"],
    }


@pytest.mark.skipif(not shutil.which("pwsh"), reason="no PowerShell (pwsh) on this machine")
def test_the_script_parses_as_powershell_and_the_mailboxes_are_plain_strings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "setup.ps1"
    path.write_text(script_for(HOSTILE))
    # Parse only (nothing runs): print every element of the $Mailboxes array as the parser
    # sees it, and fail on a parse error or an element that is not a constant string.
    check = f"""
using namespace System.Management.Automation.Language
$tokens = $null; $errors = $null
$ast = [Parser]::ParseFile({_quoted(str(path))}, [ref]$tokens, [ref]$errors)
if ($errors.Count) {{ $errors | ForEach-Object {{ $_.Message }}; exit 1 }}
$assignment = $ast.Find({{ param($node)
    $node -is [AssignmentStatementAst] -and $node.Left.VariablePath.UserPath -eq 'Mailboxes'
}}, $true)
$array = $assignment.Find({{ param($node) $node -is [ArrayExpressionAst] }}, $true)
foreach ($statement in $array.SubExpression.Statements) {{
    $expressions = @($statement.FindAll({{ param($node) $node -is [ExpressionAst] }}, $true))
    if ($expressions.Count -ne 1 -or $expressions[0] -isnot [StringConstantExpressionAst]) {{
        exit 2
    }}
    [Console]::Out.Write($expressions[0].Value + [char]10)
}}
"""
    result = subprocess.run(
        ["pwsh", "-NoProfile", "-NonInteractive", "-Command", check],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == HOSTILE


def _quoted(value: str) -> str:
    from smtp_settings.powershell import powershell_quote

    return powershell_quote(value)
