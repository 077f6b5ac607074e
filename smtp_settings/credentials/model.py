"""One credential of the settings: a client secret, a certificate, or Basic's password.

The rule "a stored credential is only ever sent where it was entered" lives here, once:
each row keeps what it was entered (or made) for, and ``moved_by`` says which of the
values given would send it elsewhere.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from smtp_settings.crypto import SecretDecryptionError, UnreadableSecret
from smtp_settings.fields import EncryptedTextField

OAUTH2 = "oauth2"
BASIC = "basic"

# What a credential of each authentication type is bound to: change one, and it must be
# entered again (it never follows the settings somewhere else).
BOUND_TO: dict[str, tuple[str, ...]] = {
    OAUTH2: ("smtp_server", "port", "use_ssl_tls", "token_endpoint", "client_id", "scopes"),
    BASIC: ("smtp_server", "port", "use_ssl_tls", "username"),
}


class Kind(models.TextChoices):
    SECRET = "secret", "Client secret"
    CERTIFICATE = "certificate", "Certificate"
    PASSWORD = "password", "Password"


class Role(models.TextChoices):
    IN_USE = "in_use", "In use"
    # Added to replace the one in use; after a promotion, the old one (the fallback).
    NEXT = "next", "Next"


def bound_value_changed(name: str, old: Any, new: Any) -> bool:
    """Whether a field a credential is bound to changed (host names and IDs ignore case)."""
    if isinstance(old, str) and isinstance(new, str) and name in ("smtp_server", "client_id"):
        return old.lower().rstrip(".") != new.lower().rstrip(".")
    return old != new


def binding_of(values: Any, auth_type: str) -> dict[str, Any]:
    """The values a credential entered now is bound to (a settings row or a mapping)."""
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name, None)
    return {name: get(name) for name in BOUND_TO[auth_type]}


# The settings row a credential belongs to: Manage SMTP's (the console's own connection)
# or the fallback connection's (issue 20). Only the primary's are listed, rotated and
# reminded of; a fallback's secret is typed on its own page.
PRIMARY_CONNECTION = 1


class _PrimaryCredentials(models.Manager["Credential"]):
    def get_queryset(self) -> models.QuerySet[Credential]:
        return super().get_queryset().filter(connection=PRIMARY_CONNECTION)


class Credential(models.Model):
    """The material is encrypted at rest: a secret's value, a password, or a certificate's
    private key (PEM). The certificate itself is public and kept as PEM."""

    # Which settings row's: a fallback connection's secret must never replace, nor be
    # listed as, the primary's (its page saves the same fields on another row).
    connection = models.PositiveSmallIntegerField(default=PRIMARY_CONNECTION)
    auth_type = models.CharField(max_length=10)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.IN_USE)
    material = EncryptedTextField("Secret material")
    certificate_pem = models.TextField(blank=True)
    thumbprint = models.CharField(max_length=40, blank=True)
    # Typed for a secret (its Expires date in Entra); read from a certificate.
    expires_on = models.DateField(null=True, blank=True)
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Where it may be sent: the values of BOUND_TO[auth_type] it was entered or made for.
    bound_to = models.JSONField(default=dict)
    # The last Validate that tested this credential explicitly, and how it went.
    checked_at = models.DateTimeField(null=True, blank=True)
    check_passed = models.BooleanField(null=True, blank=True)
    # In use, refused by Entra as a credential while the other one worked: since when,
    # and Entra's answer (what the banner and the one alert say).
    refused_at = models.DateTimeField(null=True, blank=True)
    refused_answer = models.TextField(blank=True)

    # ``objects``: the primary connection's only (the Credentials section, reminders,
    # status); ``of_every_connection``: what a settings row reads and writes as its own.
    of_every_connection = models.Manager()
    objects = _PrimaryCredentials()

    class Meta:
        app_label = "smtp_settings"
        default_manager_name = "objects"
        ordering: ClassVar[list[str]] = ["auth_type", "-role", "added_at"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["connection", "auth_type", "role"], name="one_credential_per_role"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_role_display()})"

    @property
    def name(self) -> str:
        """How pages, runs and activity name it: never any of its material."""
        if self.kind == Kind.CERTIFICATE:
            return f"certificate {self.thumbprint}"
        added = timezone.localtime(self.added_at)
        return f"{self.get_kind_display().lower()} added {added:%Y-%m-%d %H:%M}"

    def engine_credential(self) -> str | dict[str, str]:
        """What the mail engine signs in with: the secret or password, or MSAL's certificate
        credential. Raises ``SecretDecryptionError`` when no configured key decrypts it."""
        material = readable_secret(self.material)
        if self.kind == Kind.CERTIFICATE:
            return {"private_key": material, "public_certificate": self.certificate_pem}
        return material

    def moved_by(self, values: Any) -> list[str]:
        """The fields of ``values`` (a mapping) that would send this credential somewhere
        other than where it was entered."""
        return [
            name
            for name in BOUND_TO[self.auth_type]
            if name in values
            and name in self.bound_to
            and bound_value_changed(name, self.bound_to[name], values[name])
        ]


def readable_secret(value: object) -> str:
    """A stored secret as text; ``SecretDecryptionError`` when no key decrypts it."""
    if isinstance(value, UnreadableSecret):
        raise SecretDecryptionError(
            "The stored secret cannot be decrypted with the keys in SEI_ENCRYPTION_KEYS: "
            "restore the key it was saved with, or enter the secret again in Manage SMTP."
        )
    return str(value or "")


def credential_check_noted(*, credential_id: int, passed: bool) -> None:
    """A Validate run that tested this credential explicitly ended: passed or not."""
    Credential.objects.filter(pk=credential_id).update(
        checked_at=timezone.now(), check_passed=passed
    )
