"""The setup assistant: progress, the held secret, the checks, and the hand-over to Manage SMTP.

Checks are Validate runs with a scope (tenant, token, or all the steps), started by
``validation_run_start``: the same task, rate limits, diagnosis table, and the same
encrypted candidate secret erased when the run ends. What a check learns (the tenant's
ID, the service principal's object ID) is read back from its run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from smtp_settings import validation
from smtp_settings.assistant import clouds, graph_script, script
from smtp_settings.credentials.service import key_pair_for, thumbprint_of
from smtp_settings.mail import microsoft
from smtp_settings.models import (
    AuthType,
    RunScope,
    RunStatus,
    SetupAssistant,
    SetupSecret,
    SmtpSettings,
    StepStatus,
    Transport,
    ValidationRun,
)
from smtp_settings.validation.runner import MAILBOX_STEP_PREFIX
from smtp_settings.validators import parse_addresses

# Long enough to run the PowerShell and come back; short enough not to linger.
SECRET_HELD_FOR = timedelta(hours=2)

APP_FIELDS = ("cloud", "tenant", "client_id")
TRANSPORT_FIELDS = ("transport",)
SECRET_STEP_FIELDS = ("secret_expiration_date",)
MAILBOX_FIELDS = ("sender_email", "use_sender_email", "mailboxes", "smtp_server", "port")

# The assistant's steps, and which Validate step checks each one.
STEP_TITLES = {
    1: "Register the app",
    2: "Add SMTP.SendAsApp",
    3: "Grant admin consent",
    4: "Create a client secret",
    5: "Register the service principal and grant mailbox access",
}
STEP_OF_RUN_STEP = {
    "tenant": 1,
    "token_contents": 3,
    "token": 4,
    "connect": 5,
    "tls": 5,
    "authenticate": 5,
    "sender": 5,
    "send": 5,
    "mailbox": 5,
}


class SetupNotReady(Exception):
    """A check cannot start yet: the message names what is missing, and where."""


def _session_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


# -- progress ---------------------------------------------------------------------------


def setup_assistant_get(*, user: AbstractBaseUser) -> SetupAssistant:
    """The user's progress, or a fresh (unsaved) start: from the saved OAuth 2.0 settings
    when there are some (a new secret, another mailbox), otherwise Microsoft's defaults."""
    row = SetupAssistant.objects.filter(user=user).first()
    if row is not None:
        return row
    fresh = SetupAssistant(
        user_id=user.pk,
        cloud=clouds.DEFAULT.key,
        smtp_server=clouds.DEFAULT.smtp_host,
        port=clouds.SMTP_PORT,
        sender_email=getattr(user, "email", "") or "",
    )
    saved = SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).first()
    if saved is not None and saved.auth_type == AuthType.OAUTH2 and saved.token_endpoint:
        parts = urlsplit(saved.token_endpoint)
        fresh.cloud = clouds.cloud_key_for_host(parts.netloc)
        fresh.tenant = microsoft.tenant_from_token_endpoint(saved.token_endpoint) or ""
        fresh.client_id = saved.client_id
        fresh.smtp_server = saved.smtp_server
        fresh.port = saved.port
        fresh.sender_email = saved.sender_email
        fresh.use_sender_email = saved.use_sender_email
        fresh.secret_expiration_date = saved.secret_expiration_date
    return fresh


def setup_assistant_save(*, user: AbstractBaseUser, values: Mapping[str, Any]) -> SetupAssistant:
    """Store one part's validated values (never a secret)."""
    with transaction.atomic():
        row = setup_assistant_get(user=user)
        before_cloud = clouds.cloud_for(row.cloud)
        for name in (*APP_FIELDS, *TRANSPORT_FIELDS, *SECRET_STEP_FIELDS, *MAILBOX_FIELDS):
            if name in values:
                setattr(row, name, values[name])
        after_cloud = clouds.cloud_for(row.cloud)
        if after_cloud != before_cloud and row.smtp_server in ("", before_cloud.smtp_host):
            # The SMTP host follows the cloud until the administrator sets one of their own.
            row.smtp_server = after_cloud.smtp_host
        row.save()
        return row


def setup_assistant_restart(*, user: AbstractBaseUser) -> None:
    SetupAssistant.objects.filter(user=user).delete()
    SetupSecret.objects.filter(user=user).delete()


# -- the held secret --------------------------------------------------------------------


@dataclass(frozen=True)
class HeldSecret:
    """The client secret, or a certificate's private key (``certificate_pem`` then holds
    the public certificate), kept for this session."""

    secret: str = field(repr=False)
    login_host: str
    client_id: str
    expires_at: Any
    certificate_pem: str = ""

    @property
    def thumbprint(self) -> str:
        return thumbprint_of(self.certificate_pem) if self.certificate_pem else ""

    def as_values(self) -> dict[str, str]:
        """As the form's fields carry it to Validate and Save."""
        return {"client_secret": self.secret, "client_certificate_pem": self.certificate_pem}

    def fits(self, *, token_endpoint: str, client_id: str) -> bool:
        """Only for the sign-in host and app it was entered for (it never travels)."""
        host = urlsplit(token_endpoint).netloc.lower()
        return host == self.login_host.lower() and client_id.lower() == self.client_id.lower()


@sensitive_variables("secret")
def setup_secret_hold(
    *,
    user: AbstractBaseUser,
    session_key: str,
    secret: str,
    login_host: str,
    client_id: str,
    certificate_pem: str = "",
) -> None:
    SetupSecret.objects.update_or_create(
        user=user,
        defaults={
            "session": _session_hash(session_key),
            "secret": secret,
            "certificate_pem": certificate_pem,
            "login_host": login_host,
            "client_id": client_id,
            "expires_at": timezone.now() + SECRET_HELD_FOR,
        },
    )


def setup_secret_read(*, user: AbstractBaseUser, session_key: str | None) -> HeldSecret | None:
    """The secret this session entered, while it lasts; ``None`` otherwise."""
    if not session_key:
        return None
    held = SetupSecret.objects.filter(
        user=user, session=_session_hash(session_key), expires_at__gt=timezone.now()
    ).first()
    if held is None or not isinstance(held.secret, str) or not held.secret:
        return None
    return HeldSecret(
        held.secret, held.login_host, held.client_id, held.expires_at, held.certificate_pem
    )


@sensitive_variables("key_pem")
def setup_certificate_create(*, user: AbstractBaseUser, session_key: str) -> HeldSecret:
    """Step 4's recommended way: a key pair and certificate made for the app of step 1, held
    for this session like a typed secret (the key never shown); Manage SMTP's Save keeps it
    as the certificate in use."""
    state = setup_progress(user=user, session_key=session_key)
    if not state.app_known:
        raise SetupNotReady("Fill in step 1 first: a certificate is made for its app.")
    key_pem, certificate_pem = key_pair_for(client_id=state.row.client_id)
    setup_secret_hold(
        user=user,
        session_key=session_key,
        secret=key_pem,
        login_host=urlsplit(state.token_endpoint).netloc,
        client_id=state.row.client_id,
        certificate_pem=certificate_pem,
    )
    held = setup_secret_read(user=user, session_key=session_key)
    assert held is not None
    return held


def setup_secret_erase(*, user: AbstractBaseUser) -> None:
    SetupSecret.objects.filter(user=user).delete()


@receiver(user_logged_out)
def _erase_on_sign_out(sender: Any, request: Any, user: AbstractBaseUser | None, **_: Any) -> None:
    # The held secret belongs to the session that typed it; once that ends, nothing can
    # reach it, so it goes at once rather than at its expiry.
    if user is not None:
        setup_secret_erase(user=user)


def setup_secrets_purge() -> int:
    """Held secrets past their time go (beat runs this)."""
    return SetupSecret.objects.filter(expires_at__lte=timezone.now()).delete()[0]


# -- what the page shows ------------------------------------------------------------------


def _passed(run: ValidationRun | None) -> bool:
    return run is not None and run.status in (RunStatus.PASSED, RunStatus.WARNING)


@dataclass
class SetupProgress:
    row: SetupAssistant
    cloud: microsoft.Cloud
    typed_endpoint: str
    tenant_id: str
    token_endpoint: str
    sp_object_id: str
    mailboxes: list[str]
    held: HeldSecret | None
    runs: dict[str, ValidationRun | None]
    done: dict[int, bool]

    @property
    def app_known(self) -> bool:
        return bool(self.row.tenant and self.row.client_id)

    @property
    def graph(self) -> bool:
        return self.row.transport == Transport.GRAPH

    @property
    def send_proven(self) -> bool:
        """Whether step 5's check sent a message (Graph: the only proof of mailbox access;
        without one, the check proved the token alone)."""
        run = self.runs.get("mailbox")
        return _step_statuses(run).get("send") == StepStatus.PASSED

    @property
    def scope(self) -> str:
        """What the app's token is for: Exchange Online's, or its cloud's Graph."""
        return f"{self.cloud.graph_resource}/.default" if self.graph else self.cloud.exchange_scope

    def consent_url(self, *, redirect_uri: str, state: str) -> str:
        return script.admin_consent_url(
            login_host=urlsplit(self.token_endpoint).netloc or self.cloud.login_host,
            tenant=self.tenant_id or self.row.tenant,
            client_id=self.row.client_id,
            scope=self.scope,
            redirect_uri=redirect_uri,
            state=state,
        )

    def script(self) -> str:
        if self.graph:
            return graph_script.graph_scope_script(
                tenant_id=self.tenant_id or self.row.tenant,
                client_id=self.row.client_id,
                sp_object_id=self.sp_object_id,
                mailboxes=self.mailboxes,
                written_on=timezone.localdate(),
            )
        return script.exchange_script(
            tenant_id=self.tenant_id or self.row.tenant,
            client_id=self.row.client_id,
            sp_object_id=self.sp_object_id,
            mailboxes=self.mailboxes,
            written_on=timezone.localdate(),
        )


def _run_fits(run: ValidationRun | None, **expected: Any) -> ValidationRun | None:
    """A check says something only about the values it checked: one run with other
    values than today's is out of date and not shown."""
    if run is None:
        return None
    candidate = run.candidate
    for name, value in expected.items():
        if str(candidate.get(name, "")).lower() != str(value).lower():
            return None
    return run


def setup_progress(*, user: AbstractBaseUser, session_key: str | None) -> SetupProgress:
    """Where the user stands: their values, the checks that still fit them, the steps done,
    and the secret this session holds (while it fits the app and sign-in host)."""
    row = setup_assistant_get(user=user)
    cloud = clouds.cloud_for(row.cloud)
    typed = clouds.token_endpoint(cloud, row.tenant) if row.tenant else ""
    tenant_run = _run_fits(row.tenant_run, token_endpoint=typed) if typed else None
    tenant_id = row.tenant if microsoft.is_guid(row.tenant) else ""
    token_endpoint = typed
    if _passed(tenant_run):
        assert tenant_run is not None
        tenant_id = str(tenant_run.outputs.get("tenant_id") or tenant_id)
        token_endpoint = str(tenant_run.outputs.get("token_endpoint") or token_endpoint)
    # A Graph check fits Graph only (runs before the choice existed were all SMTP's).
    graph = {"transport": Transport.GRAPH} if row.transport == Transport.GRAPH else {}
    token_run = _run_fits(
        row.token_run, token_endpoint=token_endpoint, client_id=row.client_id, **graph
    )
    mailboxes = _mailboxes(row)
    mailbox_run = _mailbox_run_fits(row, token_endpoint, mailboxes)
    if graph and mailbox_run is not None:
        mailbox_run = _run_fits(mailbox_run, **graph)
    sp_object_id = ""
    for run in (mailbox_run, token_run):
        if run is not None and run.outputs.get("sp_object_id"):
            sp_object_id = str(run.outputs["sp_object_id"])
            break
    held = setup_secret_read(user=user, session_key=session_key)
    if (
        held is not None
        and token_endpoint
        and not held.fits(token_endpoint=token_endpoint, client_id=row.client_id)
    ):
        held = None
    return SetupProgress(
        row=row,
        cloud=cloud,
        typed_endpoint=typed,
        tenant_id=tenant_id,
        token_endpoint=token_endpoint,
        sp_object_id=sp_object_id,
        mailboxes=mailboxes,
        held=held,
        runs={"tenant": tenant_run, "token": token_run, "mailbox": mailbox_run},
        done=_steps_done(tenant_run, token_run, mailbox_run),
    )


def _mailboxes(row: SetupAssistant) -> list[str]:
    """Sender Email, then (Use sender email off) every other mailbox that sends."""
    mailboxes = [row.sender_email] if row.sender_email else []
    if not row.use_sender_email:
        mailboxes += [
            address
            for address in parse_addresses(row.mailboxes)
            if address.lower() not in (known.lower() for known in mailboxes)
        ]
    return mailboxes


def _mailbox_run_fits(
    row: SetupAssistant, token_endpoint: str, mailboxes: list[str]
) -> ValidationRun | None:
    mailbox_run = _run_fits(
        row.mailbox_run,
        token_endpoint=token_endpoint,
        client_id=row.client_id,
        sender_email=row.sender_email,
        smtp_server=row.smtp_server,
        port=row.port,
    )
    if mailbox_run is not None and (
        bool(mailbox_run.candidate.get("use_sender_email")) != row.use_sender_email
        or [m.lower() for m in mailbox_run.candidate.get("mailboxes") or []]
        != [m.lower() for m in ([] if row.use_sender_email else mailboxes[1:])]
    ):
        return None  # it checked other mailboxes than the ones listed now
    return mailbox_run


def _steps_done(
    tenant_run: ValidationRun | None,
    token_run: ValidationRun | None,
    mailbox_run: ValidationRun | None,
) -> dict[int, bool]:
    token_steps = _step_statuses(token_run)
    token_failed = token_run is not None and token_run.is_finished and not _passed(token_run)
    # A later check can find out that an earlier step is wrong after all: a token refused
    # for an unknown client ID undoes step 1; a secret refused now undoes step 5's pass.
    undone = {_failed_at(token_run)} if token_failed else set()
    if (
        token_failed
        and token_run is not None
        and mailbox_run is not None
        and token_run.created_at > mailbox_run.created_at
    ):
        undone.add(5)
    done = {
        1: _passed(tenant_run),
        2: token_steps.get("token_contents") in (StepStatus.PASSED,),
        3: token_steps.get("token_contents") in (StepStatus.PASSED,),
        4: token_steps.get("token") == StepStatus.PASSED,
        5: _passed(mailbox_run),
    }
    return {number: passed and number not in undone for number, passed in done.items()}


def _step_statuses(run: ValidationRun | None) -> dict[str, str]:
    if run is None:
        return {}
    return {step.key: step.status for step in run.steps.all()}


# Failures whose cause lies in an earlier step than the one whose check found them: a token
# request names a wrong tenant or client ID as readily as a wrong secret.
STEP_OF_DIAGNOSIS = {
    "aadsts_unknown_app": 1,
    "aadsts_unknown_tenant": 1,
    "aadsts_malformed_tenant": 1,
    "aadsts_shared_tenant": 1,
    "token_wrong_tenant": 1,
    "token_wrong_app": 1,
}


def _failed_at(run: ValidationRun | None) -> int:
    """The assistant's step number a check failed at (0 if none)."""
    for step in run.steps.all() if run is not None else []:
        if step.status == StepStatus.FAILED:
            key = "mailbox" if step.key.startswith(MAILBOX_STEP_PREFIX) else step.key
            return STEP_OF_DIAGNOSIS.get(step.diagnosis) or STEP_OF_RUN_STEP.get(key, 0)
    return 0


# Where Microsoft Graph's steps differ from SMTP's: its permission, and its step 5.
GRAPH_STEP_TITLES = {2: "Add Mail.Send", 5: "Limit the app to your mailboxes"}


def setup_failed_step(*, run: ValidationRun) -> str:
    """The assistant's step a finished check failed at, in its own words ("" if none)."""
    number = _failed_at(run)
    if not number:
        return ""
    titles = STEP_TITLES
    if run.candidate.get("transport") == Transport.GRAPH:
        titles = {**STEP_TITLES, **GRAPH_STEP_TITLES}
    if number == STEP_OF_RUN_STEP["token_contents"]:
        return f"2 and 3: {titles[2]} and grant admin consent"
    return f"{number}: {titles.get(number, '')}"


# -- the checks -------------------------------------------------------------------------

CHECKS = {"tenant": RunScope.TENANT, "token": RunScope.TOKEN, "mailbox": RunScope.FULL}
RUN_FIELD = {"tenant": "tenant_run", "token": "token_run", "mailbox": "mailbox_run"}


@sensitive_variables("values", "held")
def setup_check_start(
    *, user: AbstractBaseUser, session_key: str | None, check: str
) -> ValidationRun:
    """Start one check as a Validate run of the assistant's values; raises
    ``SetupNotReady`` (what is missing) or ``ValidationNotStarted`` (rate limits)."""
    state = setup_progress(user=user, session_key=session_key)
    if not state.app_known:
        raise SetupNotReady("Enter the Directory (tenant) ID and Application (client) ID first.")
    values = setup_candidate(state=state)
    if check != "tenant":
        if state.held is None:
            raise SetupNotReady(
                "Enter the client secret's Value in step 4 first (it is kept for this session "
                "only, and never shown again)."
            )
        values.update(state.held.as_values())
    if check == "mailbox" and not state.row.sender_email:
        raise SetupNotReady("Enter Sender Email in step 5 first.")
    if check == "tenant":
        values["token_endpoint"] = state.typed_endpoint
    run = validation.validation_run_start(
        values=values,
        user=user,
        scope=CHECKS[check],
        # Use sender email off: every mailbox that sends must let the app sign in.
        mailboxes=state.mailboxes[1:] if check == "mailbox" else None,
    )
    SetupAssistant.objects.filter(user=user).update(**{RUN_FIELD[check]: run})
    return run


def setup_candidate(*, state: SetupProgress) -> dict[str, Any]:
    """The assistant's values as Manage SMTP's fields (the secret apart)."""
    row = state.row
    return {
        "smtp_server": row.smtp_server or state.cloud.smtp_host,
        "sender_email": row.sender_email,
        "port": row.port or clouds.SMTP_PORT,
        "auth_type": AuthType.OAUTH2,
        "client_id": row.client_id,
        "token_endpoint": state.token_endpoint,
        "scopes": state.cloud.exchange_scope,
        "transport": row.transport,
        "username": "",
        "use_ssl_tls": True,
        "use_sender_email": row.use_sender_email,
    }


# -- Use these settings -------------------------------------------------------------------


def setup_manage_initial(*, user: AbstractBaseUser, session_key: str | None) -> dict[str, Any]:
    """What Manage SMTP's form starts from after "Use these settings" (no secret)."""
    state = setup_progress(user=user, session_key=session_key)
    initial = setup_candidate(state=state)
    initial.update(
        tenant_id=state.tenant_id or state.row.tenant,
        secret_expiration_alert=True,
        secret_expiration_date=state.row.secret_expiration_date,
    )
    return initial


@sensitive_variables("values", "state")
def setup_use_settings(*, user: AbstractBaseUser, session_key: str | None) -> ValidationRun:
    """Validate the assistant's values exactly as Manage SMTP will (all the steps); nothing
    is saved. The secret stays held for Manage SMTP's Save."""
    state = setup_progress(user=user, session_key=session_key)
    if not state.app_known or not state.row.sender_email:
        raise SetupNotReady("Fill in steps 1 and 5 first.")
    if state.held is None:
        raise SetupNotReady("Enter the client secret's Value in step 4 first.")
    values = setup_candidate(state=state)
    values.update(state.held.as_values())
    return validation.validation_run_start(values=values, user=user, scope=RunScope.FULL)
