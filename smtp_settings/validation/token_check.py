"""What a token must say for Exchange Online SMTP, and the token check on its own.

The Validate steps "Token" and "Token contents" use these rules; so does the daily
health check, which asks Entra ID for a token with the saved settings and no SMTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smtp_settings import diagnosis
from smtp_settings.mail import endpoint, jwt_claims, microsoft, oauth
from smtp_settings.mail.errors import CredentialFailure
from smtp_settings.mail.graph import graph_scope

GRAPH_MAIL_SEND_TEXT = (
    f"The token has no {microsoft.SEND_AS_APP_ROLE} role, and the app holds Microsoft Graph's "
    "Mail.Send instead: a permission SMTP does not use."
)
WRONG_SECRET = 7000215


def token_error_kind(error: oauth.TokenError, *, secret: oauth.Credential) -> str:
    """The kind diagnosis looks up: Entra says only "invalid secret" (AADSTS7000215) when the
    Secret ID was pasted instead of the Value; the shape of what was sent tells them apart
    (Entra's secret IDs are GUIDs; its secret values never are)."""
    if (
        WRONG_SECRET in error.error_codes
        and isinstance(secret, str)
        and microsoft.is_guid(secret.strip())
    ):
        return "secret_id"
    return error.kind


def has_graph_mail_send(mail: endpoint.MailSettings, *, timeout: float) -> bool:
    """Whether the app holds Graph's Mail.Send: one token for Microsoft Graph, read only."""
    scopes = endpoint.split_scopes(mail.scopes)
    resource = scopes[0].removesuffix("/.default").rstrip("/") if scopes else ""
    cloud = microsoft.cloud_for_exchange_resource(resource)
    if cloud is None:
        return False
    try:
        token = oauth.acquire_token(
            token_endpoint=mail.token_endpoint,
            client_id=mail.client_id,
            client_secret=mail.secret,
            scopes=[f"{cloud.graph_resource}/.default"],
            timeout=timeout,
            fresh=True,
        )
    except oauth.TokenError:
        return False
    claims = jwt_claims.read_claims(token.access_token) or {}
    return "Mail.Send" in [str(role) for role in claims.get("roles") or []]


def claim_facts(claims: dict[str, Any]) -> list[list[str]]:
    roles = [str(role) for role in claims.get("roles") or []]
    facts = [
        ["Audience", str(claims.get("aud", ""))],
        ["Roles", ", ".join(roles) or "(none)"],
        ["Tenant", str(claims.get("tid", ""))],
        ["Application", str(claims.get("appid") or claims.get("azp") or "")],
        ["Service principal object ID", str(claims.get("oid", ""))],
    ]
    expires = claims.get("exp")
    if isinstance(expires, int | float):
        # Read by people: the date and time in UTC, not an ISO timestamp.
        at = datetime.fromtimestamp(expires, tz=UTC)
        facts.append(["Expires", at.strftime("%Y-%m-%d %H:%M:%S UTC")])
    return facts


def claim_problems(claims: dict[str, Any], mail: endpoint.MailSettings) -> list[tuple[str, str]]:
    """(kind, explanation) for each way the token would not let the app send mail."""
    problems: list[tuple[str, str]] = []
    # Exchange accepts only tokens issued for itself, whatever the scope asked for.
    audience = str(claims.get("aud", "")).rstrip("/")
    if audience and audience not in microsoft.EXCHANGE_AUDIENCES:
        expected = microsoft.GLOBAL.exchange_resource
        problems.append(("wrong_audience", f"The token is for {audience}, not for {expected}."))
    roles = [str(role) for role in claims.get("roles") or []]
    if microsoft.SEND_AS_APP_ROLE not in roles:
        extra = (
            " It has Mail.Send, a Microsoft Graph permission SMTP does not use."
            if "Mail.Send" in roles
            else ""
        )
        problems.append(("no_role", f"The token has no {microsoft.SEND_AS_APP_ROLE} role.{extra}"))
    tenant = microsoft.tenant_from_token_endpoint(mail.token_endpoint) or ""
    if microsoft.is_guid(tenant) and claims.get("tid") and claims["tid"] != tenant:
        problems.append(("wrong_tenant", f"The token comes from tenant {claims['tid']}."))
    app = claims.get("appid") or claims.get("azp")
    if app and str(app).lower() != mail.client_id.lower():
        problems.append(("wrong_app", f"The token was issued to application {app}."))
    return problems


def graph_claim_problems(
    claims: dict[str, Any], mail: endpoint.MailSettings
) -> list[tuple[str, str]]:
    """(kind, explanation) for each way a Graph token would not let the app send."""
    problems: list[tuple[str, str]] = []
    resource = graph_scope(mail).removesuffix("/.default")
    audience = str(claims.get("aud", "")).rstrip("/")
    if audience and audience not in (resource, microsoft.GRAPH_APP_ID):
        problems.append(("graph_wrong_audience", f"The token is for {audience}, not {resource}."))
    roles = [str(role) for role in claims.get("roles") or []]
    if microsoft.MAIL_SEND_ROLE not in roles:
        problems.append(("graph_no_mail_send", "The token has no Mail.Send role."))
    # Tenant and app: the same rules as an Exchange token's.
    problems += [p for p in claim_problems(claims, mail) if p[0] in ("wrong_tenant", "wrong_app")]
    return problems


RBAC_ONLY_DETAIL = (
    "Entra ID issued a token for Microsoft Graph without the Mail.Send role: sending then "
    "relies on Exchange Online's RBAC for Applications (a grant the token never shows), "
    "which only a send proves."
)


def only_mail_send_missing(problems: list[tuple[str, str]]) -> bool:
    """A Graph token whose one problem is no Mail.Send role: right for an app that RBAC for
    Applications allows (the grant is Exchange's, per request), wrong otherwise."""
    return [kind for kind, _ in problems] == ["graph_no_mail_send"]


@dataclass(frozen=True)
class TokenCheck:
    ok: bool
    step: str  # "token" or "token_contents": where it failed, as Validate names it
    detail: str
    answer: str = ""
    finding: diagnosis.Finding | None = None


def check_token(mail: endpoint.MailSettings, *, timeout: float) -> TokenCheck:
    """A fresh token for these settings, and whether it lets the app send (no SMTP)."""
    values = diagnosis.values_for(mail)
    # Through Graph the token is Graph's, and what it must carry is Graph's (Mail.Send).
    graph = mail.transport == endpoint.GRAPH
    try:
        scopes = [graph_scope(mail)] if graph else None
        token = endpoint.acquire_token(mail, timeout=timeout, fresh=True, scopes=scopes)
    except oauth.TokenError as error:
        finding = diagnosis.diagnose(
            "token",
            kind=token_error_kind(error, secret=mail.secret),
            codes=error.error_codes,
            answer=error.message,
            auth_type=mail.auth_type,
            values=values,
        )
        return TokenCheck(False, "token", "Entra ID did not issue a token.", error.message, finding)
    claims = jwt_claims.read_claims(token.access_token)
    if claims is None:
        return TokenCheck(True, "token_contents", "A token was issued (not a readable JWT).")
    values = diagnosis.values_for(mail, claims=claims)
    problems = graph_claim_problems(claims, mail) if graph else claim_problems(claims, mail)
    if graph and only_mail_send_missing(problems):
        # An app kept to listed mailboxes by RBAC for Applications has no Mail.Send in its
        # token (Exchange grants it per request): not a failure; a refused send says more.
        return TokenCheck(True, "token_contents", RBAC_ONLY_DETAIL)
    if problems:
        finding = diagnosis.diagnose(
            "token_contents", kind=problems[0][0], auth_type=mail.auth_type, values=values
        )
        return TokenCheck(
            False, "token_contents", " ".join(text for _, text in problems), finding=finding
        )
    what = (
        f"Microsoft Graph with the {microsoft.MAIL_SEND_ROLE} role"
        if graph
        else f"Exchange Online with the {microsoft.SEND_AS_APP_ROLE} role"
    )
    return TokenCheck(True, "token_contents", f"Entra ID issued a token for {what}.")


def check_token_of(load: Callable[[], endpoint.MailSettings], *, timeout: float) -> TokenCheck:
    """The token check on settings still to be loaded (the health check's saved ones): what
    stops them loading fails the check at the step "settings"."""
    try:
        mail = load()
    except CredentialFailure as failure:
        return TokenCheck(False, "settings", failure.message)
    return check_token(mail, timeout=timeout)
