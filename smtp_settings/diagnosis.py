"""Known failures as data: what an answer or error means, and the fix in the administrator's terms.

A row matches on the step where the failure happened and one discriminator: a
failure kind named by the transport or the token client, an AADSTS code, or a
pattern on the server's answer. A row may also hold only given what earlier steps of
the same run established (``Evidence``: the token's roles): a cause the run has already
ruled out is not offered. Fixes are filled with the values the form holds and the token
told; what the console cannot know stays a <PLACEHOLDER>.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smtp_settings.mail import certificate, microsoft
from smtp_settings.mail.endpoint import MailSettings
from smtp_settings.mail.errors import DeliveryError
from smtp_settings.powershell import powershell_quote, service_principal_id

# In commands every value the console fills in is quoted for PowerShell (powershell_quote):
# the templates name it bare.
CONNECT_EXCHANGE = "Connect-ExchangeOnline -Organization {tenant_id}"
NEW_SERVICE_PRINCIPAL = "New-ServicePrincipal -AppId {client_id} -ObjectId {sp_object_id}"
# The service principal's ID (Add-MailboxPermission's -User) is read in the same session, as
# the setup assistant's script does: nothing left for the administrator to look up.
SERVICE_PRINCIPAL_IN_SESSION = (
    "$sp = Get-ServicePrincipal | Where-Object {{ $_.AppId -eq {client_id} }}",
    "if (-not $sp) {{ $sp = " + NEW_SERVICE_PRINCIPAL + " }}",
)
ADD_MAILBOX_PERMISSION = (
    "Add-MailboxPermission -Identity {sender} -User ("
    + service_principal_id("$sp").replace("{", "{{").replace("}", "}}")
    + ") -AccessRights FullAccess"
)


@dataclass(frozen=True)
class Evidence:
    """What earlier steps of the same run established. ``roles`` is None when no token was
    read (Basic authentication, a token that is not a JWT, the outbox)."""

    roles: frozenset[str] | None = None

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any] | None) -> Evidence:
        """What a token's claims (read, not verified) establish; nothing without them."""
        if claims is None:
            return NO_EVIDENCE
        return cls(roles=frozenset(str(role) for role in claims.get("roles") or []))

    def holds(self, condition: str) -> bool:
        if condition == "token_has_role":
            return self.roles is not None and microsoft.SEND_AS_APP_ROLE in self.roles
        if condition == "token_lacks_role":
            return self.roles is not None and microsoft.SEND_AS_APP_ROLE not in self.roles
        if condition == "token_has_mail_send":
            return self.roles is not None and microsoft.MAIL_SEND_ROLE in self.roles
        raise ValueError(f"Unknown evidence condition {condition!r}")


NO_EVIDENCE = Evidence()


@dataclass(frozen=True)
class Diagnosis:
    key: str
    steps: frozenset[str]
    cause: str
    fix: str
    commands: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()
    aadsts: frozenset[int] = frozenset()
    answer: re.Pattern[str] | None = None
    # Authentication types the row speaks of; empty for all.
    auth_types: frozenset[str] = frozenset()
    # An Evidence condition the row needs (its other causes are ruled out); empty for none.
    given: str = ""
    # The setup assistant's Exchange script does this fix whole: the page offers it.
    script: bool = False

    def matches(
        self, step: str, kind: str, codes: set[int], answer: str, auth_type: str, evidence: Evidence
    ) -> bool:
        if self.steps and step not in self.steps:
            return False
        if self.auth_types and auth_type not in self.auth_types:
            return False
        if self.given and not evidence.holds(self.given):
            return False
        return bool(
            (kind and kind in self.kinds)
            or (codes & self.aadsts)
            or (self.answer is not None and answer and self.answer.search(answer))
        )


@dataclass(frozen=True)
class Finding:
    key: str
    cause: str
    fix: str
    commands: list[str] = field(default_factory=list)


def _row(
    key: str,
    steps: str,
    cause: str,
    fix: str,
    *,
    commands: tuple[str, ...] = (),
    kinds: str = "",
    aadsts: tuple[int, ...] = (),
    answer: str | None = None,
    auth_types: str = "",
    given: str = "",
    script: bool = False,
) -> Diagnosis:
    return Diagnosis(
        key=key,
        steps=frozenset(steps.split()),
        cause=cause,
        fix=fix,
        commands=commands,
        kinds=frozenset(kinds.split()),
        aadsts=frozenset(aadsts),
        answer=re.compile(answer, re.IGNORECASE) if answer else None,
        auth_types=frozenset(auth_types.split()),
        given=given,
        script=script,
    )


SMTP_STEPS = "connect tls authenticate sender send"

GRAPH_ROLE_FIX = (
    "In Entra ID > App registrations > your app > API permissions: Add a permission > "
    "Microsoft Graph > Application permissions > Mail.Send, then Grant admin consent for "
    "your tenant."
)

TABLE: tuple[Diagnosis, ...] = (
    # -- Microsoft Graph (Send through: Microsoft Graph) -------------------------------
    _row(
        "graph_smtp_instead",
        "token_contents",
        "The app holds Office 365 Exchange Online's SMTP.SendAsApp but not Microsoft Graph's "
        "Mail.Send: the permission for SMTP was granted, and Graph needs its own.",
        GRAPH_ROLE_FIX + " SMTP.SendAsApp can stay if SMTP is the fallback connection.",
        kinds="graph_smtp_instead",
    ),
    _row(
        "graph_no_mail_send",
        "token_contents",
        "The Graph token has no Mail.Send role. Either the application permission is missing "
        "or lacks admin consent (Graph then answers 403 ErrorAccessDenied), or Exchange "
        "Online grants it through RBAC for Applications, which never shows in the token: "
        "only a test send tells which.",
        "Let a test send decide: the Test send step below, or Validate with an address in "
        "Send test email to if it was empty. If the send is refused: "
        + GRAPH_ROLE_FIX
        + " Or, to keep the app to listed mailboxes, run the setup assistant's step 5 "
        "PowerShell (RBAC for Applications) instead.",
        kinds="graph_no_mail_send",
    ),
    _row(
        "graph_wrong_audience",
        "token_contents",
        "The token is not meant for Microsoft Graph.",
        "Leave Graph Host blank for your cloud's Graph, or ask the operator about "
        "SMTP_GRAPH_HOSTS; the console asks Entra ID for <Graph>/.default itself.",
        kinds="graph_wrong_audience",
    ),
    _row(
        "graph_access_scope",
        "send sender",
        "Microsoft Graph refused {sender} (403 ErrorAccessDenied) although the token carries "
        "Mail.Send: the app is restricted from this mailbox by an application access policy "
        "or an RBAC for Applications management scope.",
        "Add {sender} to the app's scope: the setup assistant's step 5 writes the Exchange "
        "Online PowerShell (New-ManagementScope / New-ManagementRoleAssignment -Role "
        '"Application Mail.Send"), or add the mailbox to the group its access policy names.',
        kinds="graph_access_denied",
        given="token_has_mail_send",
    ),
    _row(
        "graph_access_denied",
        "send sender",
        "Microsoft Graph refused the app (403 ErrorAccessDenied): its token has no Mail.Send "
        "(missing or not consented), or an application access policy / RBAC for "
        "Applications scope leaves {sender} out.",
        GRAPH_ROLE_FIX + " If it has it, add {sender} to the app's management scope.",
        kinds="graph_access_denied",
    ),
    _row(
        "graph_invalid_user",
        "send sender",
        "Microsoft Graph does not know the mailbox {sender} (ErrorInvalidUser): a typo, or a "
        "user without an Exchange Online mailbox.",
        "Check Sender Email against the mailbox's primary address in the Exchange admin center.",
        kinds="graph_invalid_user",
    ),
    _row(
        "graph_not_rest",
        "send sender",
        "The mailbox {sender} is not in Exchange Online (MailboxNotEnabledForRESTAPI): it is "
        "on-premises, inactive or soft-deleted, and Graph sends only from Exchange Online "
        "mailboxes.",
        "Send from a mailbox in Exchange Online, or choose Send through: SMTP for an "
        "on-premises server.",
        kinds="graph_not_rest",
    ),
    _row(
        "graph_throttled",
        "send",
        "Microsoft Graph is throttling this app or mailbox (429), or is busy (503/504).",
        "Nothing to change in Entra ID or Exchange: wait as long as Graph's Retry-After says "
        "(the outbox does, then tries again) before you run Validate again. If it lasts, "
        "spread bulk mail over time.",
        kinds="graph_throttled graph_busy",
    ),
    _row(
        "graph_invalid_token",
        "send",
        "Microsoft Graph did not accept the token (401 InvalidAuthenticationToken).",
        "Validate again; if it persists, check that Graph Host is your cloud's Graph.",
        kinds="graph_invalid_token",
    ),
    _row(
        "graph_too_large",
        "send",
        "The message is over Graph's 4 MB per request (base64); only this message failed.",
        "Send smaller attachments, or a link to the file.",
        kinds="graph_too_large",
    ),
    _row(
        "graph_host",
        "settings send",
        "The Graph host is not Microsoft's and not allowed by SMTP_GRAPH_HOSTS, or cannot be "
        "told from the token endpoint: the access token is never sent there.",
        "Leave Graph Host blank for Microsoft's Graph, or ask the operator to allow the host.",
        kinds="graph_host_not_allowed graph_host_unknown foreign_host redirect",
    ),
    # -- Entra ID: the token request (Entra ID error codes) ---------------------------
    _row(
        "token_redirect",
        "token",
        "The token endpoint answered with a redirect. Following it would send the client "
        "secret to wherever it points, so the console stopped.",
        "Enter the token endpoint itself in Token Endpoint (for Microsoft 365: "
        "https://login.microsoftonline.com/<TENANT_ID>/oauth2/v2.0/token), not an address "
        "that forwards to it.",
        kinds="redirect",
    ),
    _row(
        "token_foreign_host",
        "token tenant",
        "The token endpoint's metadata (OIDC discovery) names a token endpoint on another "
        "host. The client secret is only sent to the host in Token Endpoint, so the console "
        "stopped.",
        "Use Microsoft's own token endpoint for your tenant, or ask the operator whether "
        "this authority is the one intended (SMTP_OAUTH_AUTHORITY_HOSTS).",
        kinds="foreign_host",
    ),
    _row(
        "aadsts_secret_id",
        "token",
        "Entra ID rejected the client secret (AADSTS7000215), and what was entered has the "
        "shape of a Secret ID: the ID of the secret was pasted, not its Value.",
        "In Entra ID > App registrations > your app > Certificates & secrets, the Value column "
        "holds the secret (Entra shows it only right after the secret is created; if it is "
        "hidden now, create a new secret and copy its Value at once). Enter that in Client "
        "Secret.",
        kinds="secret_id",
    ),
    _row(
        "aadsts_wrong_secret",
        "token",
        "Entra ID rejected the client secret (AADSTS7000215). Often the secret's ID was "
        "pasted instead of its Value.",
        "In Entra ID > App registrations > your app > Certificates & secrets, copy the "
        "secret's Value (shown only when it is created; if it is gone, create a new secret) "
        "and enter it in Client Secret.",
        aadsts=(7000215,),
    ),
    _row(
        "aadsts_secret_expired",
        "token",
        "The client secret has expired (AADSTS7000222).",
        "Create a new client secret under Certificates & secrets, enter its Value in Client "
        "Secret and its expiry in Secret Expiration Date.",
        aadsts=(7000222,),
    ),
    _row(
        "aadsts_no_secret",
        "token",
        "No client secret reached Entra ID (AADSTS7000218).",
        "Enter the client secret's Value in Client Secret.",
        aadsts=(7000218,),
    ),
    # -- certificate credentials: Entra's checks of the signed client assertion -----------
    _row(
        "aadsts_certificate_not_uploaded",
        "token",
        "Entra ID does not know the certificate the console signed with (AADSTS700027, "
        '"key was not found"): it was never uploaded to this app registration, or it was '
        "uploaded to another one.",
        "In Manage SMTP > Credentials, download the certificate's .cer and upload it in Entra "
        "ID > App registrations > the app with Application (client) ID {client_id} > "
        "Certificates & secrets > Certificates > Upload certificate. Entra then lists "
        "thumbprint {thumbprint}; Validate again.",
        answer=r"AADSTS700027.*key was not found",
    ),
    _row(
        "aadsts_certificate_expired",
        "token",
        'The certificate has expired (AADSTS700027, "key has expired"): Entra ID no longer '
        "accepts assertions signed with it.",
        "In Manage SMTP > Credentials, create a new certificate, upload its .cer under "
        "Certificates & secrets, Validate it, make it the one in use, then remove the expired "
        "one here and in Entra ID.",
        answer=r"AADSTS700027.*(key has expired|key used is expired|expired)",
    ),
    _row(
        "aadsts_certificate_signature",
        "token",
        "Entra ID holds a certificate with this thumbprint, but the signature made with the "
        "console's private key does not verify with it (AADSTS700027): the key stored here is "
        "not the certificate's own.",
        "Import the certificate again with its own private key (the .pfx it came in), or "
        "create a new certificate in Manage SMTP > Credentials and upload that one.",
        answer=r"AADSTS700027.*signature (is not valid|validation)",
    ),
    _row(
        "aadsts_certificate_refused",
        "token",
        "Entra ID refused the certificate's signed assertion (AADSTS700027).",
        "Check in Entra ID > App registrations > the app > Certificates & secrets that the "
        "certificate with thumbprint {thumbprint} is listed and current; upload it again or "
        "create a new one in Manage SMTP > Credentials.",
        aadsts=(700027,),
    ),
    _row(
        "aadsts_assertion_clock",
        "token",
        "The signed assertion is outside its valid time (AADSTS700024): this server's clock "
        "is too far from Entra's (more than a few minutes).",
        "Synchronise the clock of the server the console runs on (NTP: e.g. timedatectl "
        "set-ntp true, or the container host's time sync), then Validate again.",
        aadsts=(700024,),
    ),
    _row(
        "aadsts_assertion_wrong_client",
        "token",
        "The signed assertion names another application than the one asking for the token "
        "(AADSTS700021).",
        "Check Client ID against the Application (client) ID on the app registration's "
        "Overview page; a certificate made for another app is used only with that app: "
        "create one for this app in Manage SMTP > Credentials.",
        aadsts=(700021,),
    ),
    _row(
        "aadsts_assertion_audience",
        "token",
        "The signed assertion was made for another token endpoint than the one it was sent "
        "to (AADSTS700023).",
        "Enter the tenant's token endpoint exactly as Entra lists it under Endpoints (for "
        "Microsoft 365: https://login.microsoftonline.com/{tenant_hint}/oauth2/v2.0/token), "
        "not an alias or a proxy in front of it.",
        aadsts=(700023,),
    ),
    _row(
        "aadsts_unknown_app",
        "token",
        "No application with this Client ID exists in the tenant of the token endpoint "
        "(AADSTS700016).",
        "Compare Client ID with the Application (client) ID on the app registration's "
        "Overview page, and the tenant in Token Endpoint with its Directory (tenant) ID.",
        aadsts=(700016,),
    ),
    _row(
        "aadsts_unknown_tenant",
        "token tenant",
        "Entra ID does not know the tenant in the token endpoint (AADSTS90002).",
        "Put the Directory (tenant) ID from the app registration's Overview page into the "
        "Token Endpoint; for a government or China tenant use that cloud's login host.",
        aadsts=(90002,),
    ),
    _row(
        "aadsts_malformed_tenant",
        "token tenant",
        "The tenant part of the token endpoint is malformed (AADSTS900023), for example a "
        "placeholder left in the URL.",
        "Use https://login.microsoftonline.com/{tenant_hint}/oauth2/v2.0/token with your "
        "Directory (tenant) ID.",
        aadsts=(900023,),
    ),
    _row(
        "aadsts_bad_scope",
        "token",
        "Entra ID rejected the scope (AADSTS70011 or AADSTS1002012): the client credentials "
        "flow needs <resource>/.default.",
        "Set Scopes to https://outlook.office365.com/.default.",
        aadsts=(70011, 1002012),
    ),
    _row(
        "aadsts_unknown_resource",
        "token",
        "The resource named in Scopes does not exist in the tenant (AADSTS500011): a typo "
        "in the scope, or Exchange Online is not part of this tenant.",
        "Set Scopes to https://outlook.office365.com/.default and check that the tenant has "
        "Exchange Online.",
        aadsts=(500011,),
    ),
    _row(
        "aadsts_app_disabled",
        "token",
        "The application is disabled in the tenant (AADSTS7000112).",
        "In Entra ID > Enterprise applications > your app > Properties, set Enabled for "
        "users to sign-in to Yes.",
        aadsts=(7000112,),
    ),
    _row(
        "aadsts_conditional_access",
        "token",
        "A Conditional Access policy or the security defaults blocked the sign-in "
        "(AADSTS53003 / AADSTS530035).",
        "Ask the Entra ID administrator to exclude this workload identity from the policy "
        "(Entra ID > Sign-in logs show which policy applied; quote the correlation ID).",
        aadsts=(53003, 530035),
    ),
    _row(
        "aadsts_shared_tenant",
        "token tenant",
        "A shared endpoint (/common or /organizations) was used where a tenant is needed "
        "(AADSTS50194 / AADSTS90130).",
        "Use https://login.microsoftonline.com/{tenant_hint}/oauth2/v2.0/token with your "
        "Directory (tenant) ID.",
        aadsts=(50194, 90130),
    ),
    _row(
        "aadsts_other",
        "token tenant",
        "Entra ID refused the token request.",
        "Look up the AADSTS code of the answer in Microsoft's Entra error reference; quote "
        "the correlation ID and trace ID to Microsoft support.",
        kinds="refused authority",
    ),
    _row(
        "token_endpoint_unreachable",
        "token tenant",
        "The token endpoint could not be reached.",
        "Check the host in Token Endpoint and that this server may open HTTPS connections "
        "to it (proxy, firewall).",
        kinds="unreachable",
    ),
    _row(
        "token_endpoint_timeout",
        "token tenant",
        "The token endpoint did not answer in time.",
        "Check the network path to the token endpoint; try again in a minute.",
        kinds="timeout",
    ),
    _row(
        "token_endpoint_tls",
        "token tenant",
        "The token endpoint's TLS certificate was not trusted.",
        "If a proxy inspects TLS, add its CA to the system trust store or point "
        "REQUESTS_CA_BUNDLE / SSL_CERT_FILE at it.",
        kinds="tls",
    ),
    _row(
        "token_endpoint_server_error",
        "token tenant",
        "Entra ID answered with a server error.",
        "This is on Microsoft's side; try again later. Quote the correlation ID to support.",
        kinds="service",
    ),
    # -- The token's contents --------------------------------------------------------
    _row(
        "token_graph_mail_send",
        "token_contents",
        "The app holds Microsoft Graph's Mail.Send but not SMTP.SendAsApp: the permission was "
        "added under Microsoft Graph instead of Office 365 Exchange Online, and SMTP needs "
        "Exchange's.",
        "In Entra ID > App registrations > your app > API permissions: Add a permission > "
        "APIs my organization uses > Office 365 Exchange Online > Application permissions > "
        "SMTP.SendAsApp, then Grant admin consent for your tenant. Remove Mail.Send unless "
        "something else uses it.",
        kinds="graph_mail_send",
    ),
    _row(
        "token_without_role",
        "token_contents",
        "The token does not carry the SMTP.SendAsApp role, so Exchange will answer 535 5.7.3. "
        "The permission is missing, admin consent was not granted, or Microsoft Graph "
        "Mail.Send was added instead.",
        "In Entra ID > App registrations > your app > API permissions: Add a permission > "
        "APIs my organization uses > Office 365 Exchange Online > Application permissions > "
        "SMTP.SendAsApp, then Grant admin consent for your tenant.",
        kinds="no_role",
    ),
    _row(
        "token_wrong_audience",
        "token_contents",
        "The token is meant for another resource than Exchange Online.",
        "Set Scopes to https://outlook.office365.com/.default.",
        kinds="wrong_audience",
    ),
    _row(
        "token_wrong_tenant",
        "token_contents",
        "The token was issued by another tenant than the one in the token endpoint.",
        "Check the Directory (tenant) ID in Token Endpoint.",
        kinds="wrong_tenant",
    ),
    _row(
        "token_wrong_app",
        "token_contents",
        "The token was issued to another application than Client ID.",
        "Check Client ID against the app registration's Overview page.",
        kinds="wrong_app",
    ),
    # -- Reaching the SMTP server ----------------------------------------------------
    _row(
        "dns",
        "connect",
        "The SMTP server's name does not resolve.",
        "Check SMTP Server (Exchange Online: smtp.office365.com) and this server's DNS.",
        kinds="dns",
    ),
    _row(
        "refused",
        "connect",
        "Nothing accepts connections on that port.",
        "Check Port (Exchange Online: 587) and that no firewall rejects outgoing SMTP.",
        kinds="refused",
    ),
    _row(
        "timeout",
        SMTP_STEPS,
        "The SMTP server did not answer in time.",
        "Check SMTP Server and Port, and that outgoing connections to that port are allowed "
        "(many networks block 25 and 587 unless asked).",
        kinds="timeout",
    ),
    _row(
        "unreachable",
        "connect",
        "The SMTP server is unreachable from this server.",
        "Check the network route and firewall to SMTP Server.",
        kinds="unreachable",
    ),
    _row(
        "concurrent_connections",
        SMTP_STEPS,
        "Exchange allows at most 3 simultaneous connections per mailbox (432 4.3.2).",
        "Wait for other connections to finish; nothing to change in the settings.",
        answer=r"\b4\.3\.2\b",
    ),
    _row(
        "old_tls",
        SMTP_STEPS,
        "The server refused the TLS version (421 4.7.66): Exchange Online needs TLS 1.2 or newer.",
        "Update the TLS libraries of this server's operating system; the console itself "
        "never offers less than TLS 1.2.",
        answer=r"\b4\.7\.66\b",
    ),
    _row(
        "ip_blocked",
        SMTP_STEPS,
        "Exchange Online does not accept traffic from this server's IP address "
        "(550 5.7.708), common for new or trial tenants.",
        "Open a support request with Microsoft to have the address delisted.",
        answer=r"\b5\.7\.708\b",
    ),
    # -- TLS -------------------------------------------------------------------------
    _row(
        "starttls_missing",
        "tls",
        "The server does not offer STARTTLS on this port.",
        "Use port 587 for Exchange Online; for a server that speaks TLS from the first byte "
        "use port 465.",
        kinds="starttls_missing",
    ),
    _row(
        "tls_untrusted",
        "tls",
        "The server's certificate is not signed by an authority this server trusts.",
        "If the server uses an internal CA, add it to the system trust store or point "
        "SSL_CERT_FILE at it. Certificate checks cannot be turned off.",
        kinds="tls_untrusted",
    ),
    _row(
        "tls_name_mismatch",
        "tls",
        "The server's certificate is for another name than SMTP Server.",
        "Enter the host name the certificate names (Exchange Online: smtp.office365.com), "
        "not an IP address or alias.",
        kinds="tls_name_mismatch",
    ),
    _row(
        "tls_expired",
        "tls",
        "The server's certificate has expired.",
        "The SMTP server's administrator must renew its certificate.",
        kinds="tls_expired",
    ),
    _row(
        "tls_failed",
        "tls",
        "The TLS handshake failed.",
        "Check that Port matches Use SSL/TLS: 587 with STARTTLS, 465 with TLS from the start.",
        kinds="tls_failed",
    ),
    _row(
        "plaintext",
        "tls",
        "Use SSL/TLS is off: the token or password and every message cross the network "
        "unencrypted.",
        "Turn Use SSL/TLS on (Exchange Online requires it before authentication).",
        kinds="plaintext",
    ),
    # -- Authentication (Exchange Online answers) ----------------------------------------
    _row(
        "auth_disabled",
        "authenticate",
        "SMTP AUTH is switched off for the tenant or for the mailbox (535 5.7.139); the "
        "mailbox setting overrides the tenant's.",
        "Two ways out: allow SMTP AUTH for this mailbox in Exchange Online PowerShell (the "
        "commands below; the tenant-wide switch is the last one), or choose Send through: "
        "Microsoft Graph (OAuth 2.0), which does not use SMTP AUTH (the setup assistant "
        "shows the Mail.Send permission it needs).",
        commands=(
            CONNECT_EXCHANGE,
            "Set-CASMailbox -Identity {sender} -SmtpClientAuthenticationDisabled $false",
            "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
        ),
        answer=r"\b5\.7\.139\b",
    ),
    # 535 5.7.3: what the token step showed rules causes out (Evidence).
    _row(
        "auth_mailbox_permission",
        "authenticate",
        "Exchange Online refused the token for {sender} (535 5.7.3) although the token "
        "carries SMTP.SendAsApp, so consent is in place: Exchange does not let "
        "this app use the mailbox. The app's service principal is not registered in Exchange "
        "Online with the Enterprise application's Object ID, or has no FullAccess on {sender}.",
        "In Exchange Online PowerShell, register the service principal (its Object ID "
        "{sp_object_id} is the token's) and give it FullAccess on the mailbox; the setup "
        "assistant's script does the same for every mailbox:",
        commands=(CONNECT_EXCHANGE, *SERVICE_PRINCIPAL_IN_SESSION, ADD_MAILBOX_PERMISSION),
        answer=r"\b5\.7\.3\b",
        auth_types="oauth2",
        given="token_has_role",
        script=True,
    ),
    _row(
        "auth_token_without_role",
        "authenticate",
        "Exchange Online refused the token for {sender} (535 5.7.3): the token has no "
        "SMTP.SendAsApp role.",
        "In Entra ID > App registrations > your app > API permissions: Add a permission > "
        "APIs my organization uses > Office 365 Exchange Online > Application permissions > "
        "SMTP.SendAsApp, then Grant admin consent for your tenant.",
        answer=r"\b5\.7\.3\b",
        auth_types="oauth2",
        given="token_lacks_role",
    ),
    _row(
        "auth_token_rejected",
        "authenticate",
        "Exchange Online rejected the token for {sender} (535 5.7.3). The usual causes: the "
        "app's service principal is not registered in Exchange (or was registered with the "
        "App registration's object ID instead of the Enterprise application's), it has no "
        "FullAccess on the mailbox, or the token lacks SMTP.SendAsApp.",
        "Grant admin consent for SMTP.SendAsApp in Entra ID, then in Exchange Online "
        "PowerShell register the service principal with the Enterprise application's Object ID "
        "and give it FullAccess on the mailbox:",
        commands=(CONNECT_EXCHANGE, *SERVICE_PRINCIPAL_IN_SESSION, ADD_MAILBOX_PERMISSION),
        answer=r"\b5\.7\.3\b",
        auth_types="oauth2",
        script=True,
    ),
    _row(
        "basic_retired",
        "authenticate",
        "Exchange Online no longer accepts Basic authentication (a mailbox password) for mail "
        "submission (550 5.7.30): Microsoft switches it off for every tenant by the end of "
        "December 2026.",
        "Two ways out, both with an app registration in Entra ID (the setup assistant walks "
        "through it): keep SMTP with Authentication Type OAuth 2.0 (SMTP.SendAsApp; SMTP AUTH "
        "must stay allowed for the mailbox: Set-CASMailbox -Identity {sender} "
        "-SmtpClientAuthenticationDisabled $false), or choose Send through: Microsoft Graph "
        "(OAuth 2.0) with the Mail.Send application permission.",
        answer=r"\b5\.7\.30\b",
    ),
    _row(
        "plaintext_auth",
        "authenticate",
        "The connection is not encrypted, so the console did not send the token or password: "
        "anyone on the network could read them.",
        "Turn Use SSL/TLS on (port 587 with STARTTLS, or 465 with TLS from the start). For a "
        "relay that takes mail without signing in, choose Authentication Type None.",
        kinds="plaintext_auth",
    ),
    _row(
        "auth_before_tls",
        "authenticate",
        "The server does not accept this authentication here (504 5.7.4): usually AUTH "
        "before STARTTLS, or a mechanism it does not offer.",
        "Use port 587 with Use SSL/TLS on.",
        answer=r"\b5\.7\.4\b",
    ),
    _row(
        "mechanism_missing",
        "authenticate",
        "The server does not offer the authentication mechanism this type needs.",
        "For OAuth 2.0 the server must offer AUTH XOAUTH2 (Exchange Online does after "
        "STARTTLS on port 587); otherwise choose the type the server supports.",
        kinds="mechanism_missing",
    ),
    _row(
        "credentials_rejected",
        "authenticate",
        "The server rejected the credentials.",
        "With Basic, check Username and Password. With OAuth 2.0, check that the server "
        "accepts app-only tokens for Sender Email.",
        answer=r"^535\b",
    ),
    _row(
        "starttls_required",
        "authenticate sender send",
        "The server accepts this command only after STARTTLS.",
        "Turn Use SSL/TLS on.",
        answer=r"STARTTLS",
    ),
    # -- Sender and sending ----------------------------------------------------------
    _row(
        "not_authenticated",
        "sender send",
        "The server wants authentication before accepting mail (530 5.7.57).",
        "Choose OAuth 2.0 (or Basic) as Authentication Type.",
        answer=r"\b5\.7\.57\b",
    ),
    _row(
        "send_as_envelope",
        "sender send",
        "The authenticated mailbox may not send as this sender (550 5.7.60).",
        "Send from the mailbox the token authenticates (Sender Email), or grant it Send As "
        "on the other address.",
        answer=r"\b5\.7\.60\b",
    ),
    _row(
        "recipient_not_found",
        "sender send",
        "The server does not know the recipient address (550 5.1.10 / 5.1.1).",
        "Check the address in Send test email to.",
        answer=r"\b5\.1\.(10|1)\b",
    ),
    _row(
        "send_as_header",
        "send",
        "The message's From address is not one the mailbox may send as (554 5.2.252 SendAsDenied).",
        "Turn Use sender email on so every message is from {sender}, or grant Send As on the "
        "other address:",
        commands=(
            "Add-RecipientPermission -Identity <FROM_ADDRESS> -Trustee {sender} "
            "-AccessRights SendAs",
        ),
        answer=r"SendAsDenied",
    ),
    _row(
        "throttled",
        SMTP_STEPS,
        "Exchange has blocked this mailbox for a while after repeated failures "
        "(550 5.2.251-5.2.255).",
        "Fix the failure that repeated, then wait before trying again (often an hour).",
        answer=r"\b5\.2\.25[1-5]\b.*throttl",
    ),
    _row(
        "quota",
        "send",
        "The mailbox has sent to more than 10,000 recipients in 24 hours (554 5.2.0 "
        "SubmissionQuotaExceeded).",
        "Wait until the 24-hour window moves on.",
        answer=r"SubmissionQuotaExceeded",
    ),
    _row(
        "mailbox_full",
        "send",
        "The sender's mailbox is full, usually from Sent Items (554 5.2.2).",
        "Empty Sent Items or apply a retention policy to the mailbox.",
        answer=r"\b5\.2\.2\b",
    ),  # -- Anything else: the server's own answer is the best explanation ----------------
    _row(
        "smtp_refused",
        SMTP_STEPS,
        "The server refused the command; its answer above says why.",
        "Check the settings named in the server's answer; if it is unclear, ask the mail "
        "server's administrator with the answer at hand.",
        kinds="refused greeting_refused ehlo_refused starttls_refused mail_refused "
        "rcpt_refused data_refused",
    ),
    _row(
        "not_ascii",
        "authenticate",
        "The user name or password holds characters SMTP AUTH cannot carry here.",
        "Use only ASCII in Username and Password (no accents).",
        kinds="not_ascii",
    ),
    _row(
        "address_not_ascii",
        "sender send",
        "An address of this message has letters outside ASCII before the @ (an international "
        "domain after the @ is sent in its xn-- form). Such an address needs SMTPUTF8, which "
        "the console does not use; only this message is affected.",
        "Ask the recipient for an address whose part before @ is ASCII (most people with an "
        "international address have one), and send the message to that address.",
        kinds="address_not_ascii",
    ),
    _row(
        "unwritable",
        "send",
        "The message could not be written as SMTP carries it: one of its addresses is "
        "malformed or cannot be encoded. Only this message is affected.",
        "Check the From, To, Cc and Reply-To addresses of this message where it was written "
        "(the user's e-mail address, for a password reset).",
        kinds="unwritable",
    ),
    _row(
        "not_smtp",
        "connect tls",
        "Something answers on this port, but it is not an SMTP server.",
        "Check SMTP Server and Port: Exchange Online is smtp.office365.com, port 587.",
        kinds="not_smtp",
    ),
    _row(
        "connection_broken",
        SMTP_STEPS,
        "The server ended the SMTP conversation unexpectedly.",
        "Check that SMTP Server and Port point at an SMTP service (Exchange Online: "
        "smtp.office365.com, 587), then try again.",
        kinds="disconnected protocol",
    ),
)


def values_for(mail: MailSettings, *, claims: Mapping[str, Any] | None = None) -> dict[str, str]:
    """What a fix can be filled with: the settings that failed, and what their token said
    (the Enterprise application's Object ID is the token's ``oid``)."""
    tenant = microsoft.tenant_from_token_endpoint(mail.token_endpoint) or ""
    oid = str((claims or {}).get("oid") or "")
    return {
        **({"sp_object_id": oid} if oid else {}),
        "tenant_id": tenant,
        "tenant_hint": tenant if microsoft.is_guid(tenant) else "",
        "client_id": mail.client_id,
        "sender": mail.sender_email,
        "server": mail.smtp_server,
        "port": str(mail.port),
        **({"thumbprint": _thumbprint(mail)} if isinstance(mail.secret, dict) else {}),
    }


def _thumbprint(mail: MailSettings) -> str:
    """The SHA-1 thumbprint of the certificate the settings sign with (as Entra shows it)."""
    assert isinstance(mail.secret, dict)
    return certificate.thumbprint_of(mail.secret.get("public_certificate", ""))


def diagnose(
    step: str,
    *,
    kind: str = "",
    codes: list[int] | None = None,
    answer: str = "",
    auth_type: str = "",
    values: Mapping[str, str] | None = None,
    evidence: Evidence = NO_EVIDENCE,
) -> Finding | None:
    """The first row that explains a failure at ``step``, given what earlier steps
    established, with its fix filled in."""
    code_set = set(codes or [])
    for row in TABLE:
        if row.matches(step, kind, code_set, answer, auth_type, evidence):
            fill = _Filler(values or {})
            return Finding(
                key=row.key,
                cause=row.cause.format_map(fill),
                fix=row.fix.format_map(fill),
                commands=[
                    command.format_map(_Filler(values or {}, quote=powershell_quote))
                    for command in row.commands
                ],
            )
    return None


def diagnose_failure(error: DeliveryError, mail: MailSettings | None) -> Finding | None:
    """A delivery's failure explained with the settings of the connection that met it."""
    return diagnose(
        error.stage,
        kind=error.kind,
        codes=error.codes,
        answer=error.answer,
        auth_type=mail.auth_type if mail else "",
        values=values_for(mail, claims=error.token_claims) if mail else {},
        evidence=Evidence.from_claims(error.token_claims),
    )


# The rows whose fix the setup assistant's Exchange script does whole.
SCRIPTED = frozenset(row.key for row in TABLE if row.script)


class _Filler(dict[str, str]):
    """Form values for the fix; what the console cannot know stays a placeholder."""

    PLACEHOLDERS: Mapping[str, str] = {
        "tenant_id": "<TENANT_ID>",
        "tenant_hint": "<TENANT_ID>",
        "client_id": "<APPLICATION_ID>",
        "sender": "<MAILBOX>",
        "sp_object_id": "<ENTERPRISE_APP_OBJECT_ID>",
        "thumbprint": "<THUMBPRINT>",
    }

    def __init__(self, values: Mapping[str, str], *, quote: Callable[[str], str] = str) -> None:
        super().__init__({key: quote(value) for key, value in values.items() if value})

    def __missing__(self, key: str) -> str:
        return self.PLACEHOLDERS.get(key, f"<{key.upper()}>")
