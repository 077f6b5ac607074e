"""The rows of Manage SMTP: the settings, their change history, validation runs, heartbeats."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from smtp_settings.credentials import model as credential_model
from smtp_settings.credentials.columns import CredentialColumns
from smtp_settings.credentials.model import Credential, readable_secret  # noqa: F401
from smtp_settings.fields import EncryptedTextField
from smtp_settings.mail import microsoft


class Transport(models.TextChoices):
    SMTP = "smtp", "SMTP (OAuth 2.0 / Basic / none)"
    GRAPH = "graph", "Microsoft Graph (OAuth 2.0)"


def route_text(connection: Any, mailbox: str = "") -> str:
    """How pages name a connection's way out: "Microsoft Graph (sendMail) as <mailbox>" or
    "SMTP <server>:<port> as <mailbox>". ``connection`` is a settings row or the engine's
    ``MailSettings`` (the same names); ``mailbox`` the one a message went as, else the
    sender."""
    as_whom = mailbox or connection.sender_email
    if connection.transport == Transport.GRAPH:
        return f"Microsoft Graph (sendMail) as {as_whom}"
    return f"SMTP {connection.smtp_server}:{connection.port} as {as_whom}"


class AuthType(models.TextChoices):
    OAUTH2 = "oauth2", "OAuth 2.0"
    BASIC = "basic", "Basic (Username and Password)"
    NONE = "none", "None"


# The secret each authentication type uses, and the column recording when it was replaced.
SECRET_FIELD_BY_AUTH_TYPE: dict[str, str] = {
    AuthType.OAUTH2: "client_secret",
    AuthType.BASIC: "password",
}
SECRET_FIELDS = tuple(SECRET_FIELD_BY_AUTH_TYPE.values())
REPLACED_AT = {"client_secret": "client_secret_replaced_at", "password": "password_replaced_at"}
SECRET_LABELS = {"client_secret": "Client Secret", "password": "Password"}
# A stored secret is used only while these are as they were when it was entered: change one,
# and the secret must be typed again (it never follows the settings somewhere else). The
# rule itself lives on the credential's row (credentials/model.py).
SECRET_BOUND_TO: dict[str, tuple[str, ...]] = {
    "client_secret": credential_model.BOUND_TO[AuthType.OAUTH2],
    "password": credential_model.BOUND_TO[AuthType.BASIC],
}
AUTH_TYPE_OF_SECRET = {name: auth for auth, name in SECRET_FIELD_BY_AUTH_TYPE.items()}


def secret_moved_by(stored: Any, values: Any, secret: str) -> list[str]:
    """The fields of ``values`` (field name -> value) that would send the stored ``secret``
    (the credential in use of its authentication type) somewhere other than where it was
    entered. Empty while nothing is stored."""
    if stored is None or not getattr(stored, "is_stored", True):
        return []
    credential = stored.credential(AUTH_TYPE_OF_SECRET[secret])
    return credential.moved_by(values) if credential is not None else []


def secrets_moved(stored: Any, values: Any) -> set[str]:
    """The stored secrets whose endpoint ``values`` would change."""
    return {secret for secret in SECRET_BOUND_TO if secret_moved_by(stored, values, secret)}


def blank_secret_moved(stored: Any, values: Any) -> bool:
    """The secret of ``values``' authentication type was left blank ("keep the stored one"),
    yet ``values`` would move the stored one: the form checked it against the row as it was,
    and someone has saved since."""
    auth_type = values.get("auth_type", getattr(stored, "auth_type", "") if stored else "")
    active = SECRET_FIELD_BY_AUTH_TYPE.get(auth_type)
    return bool(active and not values.get(active) and secret_moved_by(stored, values, active))


bound_value_changed = credential_model.bound_value_changed


# What decides where and how mail goes, secrets apart: what a Validate run tests.
CONNECTION_FIELDS = (
    "transport",
    "graph_host",
    "smtp_server",
    "sender_email",
    "port",
    "auth_type",
    "client_id",
    "token_endpoint",
    "scopes",
    "username",
    "use_ssl_tls",
    "use_sender_email",
)


GRAPH_FIELDS = ("transport", "graph_host")


@sensitive_variables("secret", "text")
def settings_fingerprint(values: Any, secret: str) -> str:
    """Names one set of connection values with one secret (an HMAC: nothing of the secret
    can be read back from it): a run that tested exactly what is saved has the saved row's."""
    # Graph's fields count only once Graph is chosen: a row saved before they existed keeps
    # its fingerprint (and so its passing Validate run).
    names = [
        name
        for name in CONNECTION_FIELDS
        if name not in GRAPH_FIELDS or _value(values, "transport") == Transport.GRAPH
    ]
    text = json.dumps([str(_value(values, name)) for name in names] + [secret])
    return hmac.new(settings.SECRET_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


@sensitive_variables("secret")
def saved_settings_fingerprint(row: Any) -> str:
    """The fingerprint of a settings row with the secret its authentication type uses. A
    function of its own: the secret is a local of no caller's frame (error pages show them)."""
    credential = (
        row.credential(row.auth_type) if row.auth_type in SECRET_FIELD_BY_AUTH_TYPE else None
    )
    if credential is not None and credential.kind == credential_model.Kind.CERTIFICATE:
        # A certificate is named by its thumbprint (as a Validate run of it names it).
        return settings_fingerprint(row, f"certificate:{credential.thumbprint}")
    secret = getattr(row, SECRET_FIELD_BY_AUTH_TYPE.get(row.auth_type) or "", "")
    return settings_fingerprint(row, secret if isinstance(secret, str) else "")


def _value(values: Any, name: str) -> Any:
    return values.get(name, "") if isinstance(values, dict) else getattr(values, name, "")


# What the administrator edits on Manage SMTP, secrets apart.
EDITABLE_FIELDS = (
    *CONNECTION_FIELDS,
    "secret_expiration_alert",
    "secret_expiration_date",
    "alert_recipients",
)


class SmtpSettings(CredentialColumns, models.Model):
    """The one configuration the console sends its mail with (always primary key 1)."""

    SINGLETON_PK: ClassVar[int] = 1
    # The optional fallback connection (issue 20): the same fields, a second row. The
    # outbox sends through it when the primary cannot deliver for a reason that is not the
    # message's.
    FALLBACK_PK: ClassVar[int] = 2

    transport = models.CharField(
        "Send through", max_length=10, choices=Transport.choices, default=Transport.SMTP
    )
    # Graph only: its host[:port] when not the cloud's own (SMTP_GRAPH_HOSTS allows others).
    graph_host = models.CharField("Graph Host", max_length=260, blank=True)
    # Blank only with Graph (the form requires it for SMTP).
    smtp_server = models.CharField("SMTP Server", max_length=253, blank=True)
    sender_email = models.EmailField("Sender Email", max_length=254)
    port = models.PositiveIntegerField("Port", default=587)
    auth_type = models.CharField(
        "Authentication Type", max_length=10, choices=AuthType.choices, default=AuthType.OAUTH2
    )
    client_id = models.CharField("Client ID", max_length=36, blank=True)
    secret_expiration_alert = models.BooleanField("Secret Expiration Alert", default=True)
    secret_expiration_date = models.DateField("Secret Expiration Date", null=True, blank=True)
    # Besides every administrator with an e-mail address: e.g. a shared IT mailbox.
    alert_recipients = models.TextField("Alert recipients", blank=True)
    token_endpoint = models.URLField("Token Endpoint", max_length=500, blank=True)
    scopes = models.CharField(
        "Scopes", max_length=1000, blank=True, default=microsoft.GLOBAL.exchange_scope
    )
    username = models.CharField("Username", max_length=254, blank=True)
    use_ssl_tls = models.BooleanField("Use SSL/TLS", default=True)
    use_sender_email = models.BooleanField("Use sender email", default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Counts saves: a Save from a page opened before the last one is refused, not applied.
    version = models.PositiveIntegerField(default=0, editable=False)
    # settings_fingerprint of what is saved: Validate runs of exactly these values share it.
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    # The fallback connection's last health check (the primary's are MailHealthCheck rows):
    # None until one ran for the values saved, then whether it passed and what it said.
    check_ok = models.BooleanField(null=True, editable=False)
    check_detail = models.TextField(blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "SMTP settings"
        verbose_name_plural = "SMTP settings"

    def __str__(self) -> str:
        if self.transport == Transport.GRAPH:
            return f"Microsoft Graph ({self.graph_host or 'the cloud of the token endpoint'})"
        return f"{self.smtp_server}:{self.port}" if self.smtp_server else "SMTP settings (unset)"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """The row, then the secrets entered on it (credential rows need the row's values)."""
        super().save(*args, **kwargs)
        self.secrets_store()

    @property
    def basic_against_microsoft(self) -> bool:
        """Saved with Basic authentication (a mailbox password) to Exchange Online's SMTP
        host: Microsoft switches that off (550 5.7.30) by the end of December 2026."""
        return (
            self.is_stored
            and self.transport == Transport.SMTP
            and self.auth_type == AuthType.BASIC
            and self.smtp_server.lower().rstrip(".") in microsoft.SMTP_HOSTS
        )

    @property
    def route(self) -> str:
        return route_text(self)

    @property
    def is_configured(self) -> bool:
        """Saved with somewhere to send: an SMTP server, or Graph."""
        return self.is_stored and (self.transport == Transport.GRAPH or bool(self.smtp_server))

    @classmethod
    def load(cls) -> SmtpSettings:
        """The stored settings, or an unsaved instance holding the defaults for a new setup."""
        return cls.objects.filter(pk=cls.SINGLETON_PK).first() or cls(pk=cls.SINGLETON_PK)

    @classmethod
    def load_fallback(cls) -> SmtpSettings:
        """The fallback connection, or an unsaved instance with the defaults."""
        return cls.objects.filter(pk=cls.FALLBACK_PK).first() or cls(pk=cls.FALLBACK_PK)

    @property
    def is_stored(self) -> bool:
        return not self._state.adding

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        self.credentials_forget()

    def connection_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CONNECTION_FIELDS}

    def secret_for_auth_type(self) -> str:
        """The stored secret the configured authentication type uses ("" for none).

        Raises ``SecretDecryptionError`` when the configured keys cannot decrypt it.
        """
        name = SECRET_FIELD_BY_AUTH_TYPE.get(self.auth_type)
        return readable_secret(getattr(self, name)) if name else ""


class SettingsChange(models.Model):
    """One Save: who, when, and what changed. Secrets appear only as "replaced"."""

    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A list of {"field", "label", "old", "new"}; for secrets old/new are never stored.
    changes = models.JSONField(default=list)
    # Which settings row was saved: Manage SMTP's (1) or the fallback connection's (2).
    connection = models.PositiveSmallIntegerField(default=credential_model.PRIMARY_CONNECTION)

    class Meta:
        ordering: ClassVar[list[str]] = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"SMTP settings change at {self.changed_at:%Y-%m-%d %H:%M}"


class WorkerHeartbeat(models.Model):
    """Proof the background runs: when a worker last ran beat's heartbeat task (role
    "worker"), and when a beat process last said it was alive (role "beat")."""

    WORKER: ClassVar[str] = "worker"
    BEAT: ClassVar[str] = "beat"

    worker = models.CharField(max_length=255, unique=True)
    role = models.CharField(max_length=10, default="worker")
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.worker} at {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @staticmethod
    def stale_after() -> float:
        """Seconds without a report after which a process counts as gone: three beats, or
        one beat behind two drains (a busy worker runs its heartbeat once a drain ends)."""
        beat = float(settings.SEI_HEARTBEAT_SECONDS)
        return max(3 * beat, beat + 2 * float(settings.SMTP_OUTBOX_DRAIN_SECONDS))


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    WARNING = "warning", "Passed with warnings"
    FAILED = "failed", "Failed"
    ERROR = "error", "Could not finish"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    WARNING = "warning", "Warning"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class RunScope(models.TextChoices):
    """How much of Validate a run covers: the setup assistant checks one part at a time."""

    FULL = "full", "Validate"
    TENANT = "tenant", "Tenant check"
    TOKEN = "token", "Token check"


class ValidationRun(models.Model):
    """One click on Validate (or one check of the setup assistant): the unsaved settings
    it tested and how each step went.

    The candidate secret is kept encrypted only while the run lasts.
    """

    FINISHED: ClassVar[frozenset[str]] = frozenset(
        {RunStatus.PASSED, RunStatus.WARNING, RunStatus.FAILED, RunStatus.ERROR}
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Set when a worker claims the run; after that each step's end is its heartbeat.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    # The form's values, secrets excepted: what was tested, shown with the run.
    candidate = models.JSONField(default=dict)
    candidate_secret = EncryptedTextField("Secret under test")
    test_recipient = models.EmailField(blank=True)
    summary = models.TextField(blank=True)
    scope = models.CharField(max_length=10, choices=RunScope.choices, default=RunScope.FULL)
    # What the run learnt that the setup assistant carries on with (the tenant's ID and
    # token endpoint from discovery, the service principal's object ID from the token).
    outputs = models.JSONField(default=dict, blank=True)
    # settings_fingerprint of the values and secret tested: equal to the saved row's when
    # the run tested what is saved (before or after the Save).
    fingerprint = models.CharField(max_length=64, blank=True)
    # Which connection's values were tested: Manage SMTP's (1) or the fallback's (2); each
    # page lists its own runs, and a blank secret was that connection's stored one.
    connection = models.PositiveSmallIntegerField(default=credential_model.PRIMARY_CONNECTION)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        indexes: ClassVar[list[models.Index]] = [
            # The abandoned-run sweep and the one-run-at-a-time rule look at unfinished runs;
            # the rate limit at one administrator's recent runs.
            models.Index(fields=["status", "created_at"], name="run_status_created"),
            models.Index(fields=["requested_by", "created_at"], name="run_user_created"),
            # "Is one of mine still running?" on every Validate click, however many are done.
            models.Index(fields=["requested_by", "status"], name="run_user_status"),
            # The last verdict, on every status block.
            models.Index(fields=["finished_at"], name="run_finished"),
        ]

    def __str__(self) -> str:
        return f"Validation {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def target(self) -> str:
        """Where the run sent its values: "Microsoft Graph" (and its host when one was
        given), or the SMTP server and port."""
        return run_target(self.candidate)


def run_target(candidate: dict[str, Any]) -> str:
    """What a run's candidate values connect to, in the words of Send through."""
    if candidate.get("transport") == Transport.GRAPH:
        host = candidate.get("graph_host") or ""
        return f"Microsoft Graph ({host})" if host else "Microsoft Graph"
    return f"{candidate.get('smtp_server') or ''}:{candidate.get('port') or ''}"


class ValidationStep(models.Model):
    run = models.ForeignKey(ValidationRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=30)
    name = models.CharField(max_length=60)
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.PENDING)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    detail = models.TextField(blank=True)
    server_answer = models.TextField(blank=True)
    facts = models.JSONField(default=list)
    cause = models.TextField(blank=True)
    fix = models.TextField(blank=True)
    commands = models.JSONField(default=list)
    diagnosis = models.CharField(max_length=40, blank=True)
    # When the worker wrote the step's end: the run's heartbeat while it runs.
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["position"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["run", "position"], name="unique_step_position")
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


# -- the outbox: post_office's Email holds the message and its attempt log (Log) --------


class DeliveryState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DEFERRED = "deferred", "Deferred"
    HELD = "held", "Held"
    FAILED = "failed", "Failed"


# A Delivery's diagnosis when the message was withdrawn (an alert made untrue before it
# left): failed, and never to be retried.
WITHDRAWN = "withdrawn"


class DeliveryPriority(models.IntegerChoices):
    """The order in which due messages are claimed: lower first, then the oldest due."""

    # A password reset or an invitation: someone waits at the screen for it, and its link
    # expires (a backlog at Exchange's 30 a minute could outlast the hour).
    ONE_TIME_LINK = 0, "One-time link"
    NORMAL = 1, "Normal"


class Delivery(models.Model):
    """How delivery of one outbox message goes: state, attempts, the last answer and its diagnosis.

    A worker claims a message by setting ``claimed_until``; if it dies, the claim runs
    out and another worker takes the message again (at least once, never zero).
    """

    PENDING: ClassVar[tuple[str, ...]] = (DeliveryState.QUEUED, DeliveryState.DEFERRED)

    email = models.OneToOneField(
        "post_office.Email", primary_key=True, on_delete=models.CASCADE, related_name="delivery"
    )
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(
        choices=DeliveryPriority.choices, default=DeliveryPriority.NORMAL
    )
    mailbox = models.CharField(max_length=254, blank=True)
    # Which connection sent it: "primary", or "fallback" (then last_error and the
    # diagnosis say why the primary could not).
    connection = models.CharField(max_length=10, blank=True)
    # With a fallback connection, how each connection did with this message (the outbox's
    # message page and the banners show it): {"primary": leg, "fallback": leg}, a leg being
    # {"route", "answer"} for the one that sent it, or {"route", "error", "answer",
    # "diagnosis", "cause", "fix", "commands"} for one that failed. Empty otherwise.
    routes = models.JSONField(default=dict, blank=True)
    last_answer = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    diagnosis = models.CharField(max_length=40, blank=True)
    cause = models.TextField(blank=True)
    fix = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["state", "claimed_until"], name="delivery_claimed"),
            # "Last message sent" on every status block: the newest of the sent ones.
            models.Index(fields=["state", "sent_at"], name="delivery_sent"),
            # The outbox list of one state, newest first, a page at a time.
            models.Index(fields=["state", "email"], name="delivery_state_newest"),
        ]

    def __str__(self) -> str:
        return f"Delivery of email {self.email_id}: {self.state}"

    @property
    def retryable(self) -> bool:
        """Deferred, held or failed; not a withdrawn alert (what it said is no longer true)."""
        if self.state == DeliveryState.FAILED:
            return self.diagnosis != WITHDRAWN
        return self.state in (DeliveryState.DEFERRED, DeliveryState.HELD)

    @property
    def waits_until(self) -> datetime | None:
        """When a waiting message is tried next, if not now: a retry's backoff, or, never
        tried yet, its mailbox's limits (connections, sends a minute, a server's Retry-After)."""
        waiting = self.state in self.PENDING and self.next_attempt_at is not None
        return self.next_attempt_at if waiting and self.next_attempt_at > timezone.now() else None

    @property
    def sent_through_fallback(self) -> bool:
        """Sent by the fallback connection: its columns then say why not by the primary."""
        return self.state == DeliveryState.SENT and self.connection == "fallback"


class MailboxThrottle(models.Model):
    """Per sending mailbox, across every worker: when the next message may go out.

    Its row is also the lock that serialises taking a connection lease for the mailbox.
    """

    mailbox = models.CharField(max_length=254, primary_key=True)
    next_slot_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.mailbox}: next at {self.next_slot_at:%H:%M:%S}"


class MailboxLease(models.Model):
    """One open SMTP session for a mailbox, held by one worker until it closes or the lease ends."""

    mailbox = models.CharField(max_length=254, db_index=True)
    holder = models.CharField(max_length=200)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.mailbox} held by {self.holder}"


# -- reminders and the daily health check -----------------------------------------------


class SecretReminder(models.Model):
    """One reminder sent for one secret: the unique pair makes a second copy impossible."""

    # Which secret and date: a new secret or a new date starts a new series.
    series = models.CharField(max_length=64)
    threshold = models.CharField(max_length=20)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_on = models.DateField()
    recipients = models.JSONField(default=list)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["series", "threshold"], name="one_reminder_each")
        ]

    def __str__(self) -> str:
        return f"Reminder {self.threshold} for secret expiring {self.expires_on}"


class MailHealthCheck(models.Model):
    """One run of the health check: a token with the saved settings, and what it says."""

    checked_at = models.DateTimeField(default=timezone.now, db_index=True)
    ok = models.BooleanField()
    step = models.CharField(max_length=30, blank=True)
    detail = models.TextField(blank=True)
    answer = models.TextField(blank=True)
    diagnosis = models.CharField(max_length=40, blank=True)
    cause = models.TextField(blank=True)
    fix = models.TextField(blank=True)
    # Whether this check e-mailed the administrators (first failure, or recovery).
    alerted = models.BooleanField(default=False)

    class Meta:
        ordering: ClassVar[list[str]] = ["-checked_at", "-pk"]

    def __str__(self) -> str:
        return f"Health check at {self.checked_at:%Y-%m-%d %H:%M}: {'ok' if self.ok else 'failed'}"


# -- the setup assistant ------------------------------------------------------------------


class SetupAssistant(models.Model):
    """One administrator's progress through the Microsoft 365 setup assistant.

    Never the client secret: that is a ``SetupSecret``, short-lived and bound to a session.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    # A key of smtp_settings.mail.microsoft.CLOUDS, or an operator-allowed "host[:port]".
    cloud = models.CharField(max_length=260, blank=True)
    # SMTP (SMTP.SendAsApp) or Microsoft Graph (Mail.Send): chosen at step 2.
    transport = models.CharField(max_length=10, choices=Transport.choices, default=Transport.SMTP)
    # As typed: a Directory (tenant) ID, or one of the tenant's domains.
    tenant = models.CharField(max_length=253, blank=True)
    client_id = models.CharField(max_length=36, blank=True)
    secret_expiration_date = models.DateField(null=True, blank=True)
    smtp_server = models.CharField(max_length=253, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    sender_email = models.EmailField(max_length=254, blank=True)
    use_sender_email = models.BooleanField(default=True)
    # More mailboxes that send (Use sender email off), separated by commas.
    mailboxes = models.TextField(blank=True)
    # The latest check of each kind; their outputs carry what later steps need.
    tenant_run = models.ForeignKey(
        ValidationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_run = models.ForeignKey(
        ValidationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mailbox_run = models.ForeignKey(
        ValidationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Setup assistant of user {self.user_id}"


class SetupSecret(models.Model):
    """The client secret typed into the setup assistant, encrypted, for one session and a
    short time: the checks and "Use these settings" need it, the progress row never holds it.

    It belongs to the sign-in host and client it was entered for (a secret never follows
    the settings elsewhere), and is erased once Manage SMTP saves it or it runs out.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    # A hash of the session key: another browser signed in as the same user cannot use it.
    session = models.CharField(max_length=64)
    secret = EncryptedTextField("Client secret")
    # With a certificate made in the assistant: its public PEM (``secret`` holds its key).
    certificate_pem = models.TextField(blank=True)
    # Where it may be sent: the sign-in host ("host[:port]") and the app it was entered for.
    login_host = models.CharField(max_length=260)
    client_id = models.CharField(max_length=36)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"Setup secret of user {self.user_id} until {self.expires_at:%H:%M}"
