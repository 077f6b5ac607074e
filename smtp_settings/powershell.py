"""PowerShell as the console writes it for administrators: the diagnosis table's commands and
the setup assistant's Exchange script share these, so both say the same thing the same way.

Standard library only: the mail engine's callers (the outbox, Validate, the health check) and
the assistant all take it without taking each other.
"""

from __future__ import annotations

# PowerShell ends a single-quoted string at any of these; inside one, each is doubled.
_POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"


def powershell_quote(value: str) -> str:
    """``value`` as one single-quoted PowerShell argument: nothing in it is ever run."""
    return "'" + "".join(ch * 2 if ch in _POWERSHELL_QUOTES else ch for ch in value) + "'"


def service_principal_id(variable: str) -> str:
    """The ID field of the service principal object in ``variable`` (what Get-ServicePrincipal
    prints and Add-MailboxPermission's -User takes), read in the same session: nothing for
    the administrator to look up and paste. Its property name differs between versions of
    the ExchangeOnlineManagement module."""
    return (
        f"@({variable}.Id, {variable}.Identity, {variable}.ObjectId) "
        "| Where-Object { $_ } | Select-Object -First 1"
    )
