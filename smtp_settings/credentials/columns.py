"""The settings row's ``client_secret`` and ``password`` as they were before credentials
became rows: the material of the credential in use of that authentication type.

Manage SMTP's form, its services and the setup assistant read and replace "the stored
secret" through these, so that they stay as they were; everything a secret is (its kind,
expiry, binding, role) lives on the ``Credential`` row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from smtp_settings.credentials.model import (
    BASIC,
    OAUTH2,
    Credential,
    Kind,
    Role,
    binding_of,
)

_AUTH_TYPE = {"client_secret": OAUTH2, "password": BASIC}
_UNSET = object()


def _secret_property(name: str) -> property:
    auth_type = _AUTH_TYPE[name]

    def get(row: CredentialColumns) -> Any:
        pending = row._pending_secrets().get(auth_type, _UNSET)
        if pending is not _UNSET:
            return pending
        credential = row.credential(auth_type)
        if credential is None or credential.kind == Kind.CERTIFICATE:
            return None
        return credential.material

    def set_(row: CredentialColumns, value: Any) -> None:
        row._pending_secrets()[auth_type] = value or None

    return property(get, set_)


def _replaced_at_property(name: str) -> property:
    auth_type = _AUTH_TYPE[name]

    def get(row: CredentialColumns) -> datetime | None:
        pending = row._pending_secrets().get(auth_type, _UNSET)
        if pending is not _UNSET:
            return timezone.now() if pending else None
        credential = row.credential(auth_type)
        return credential.added_at if credential is not None else None

    def set_(row: CredentialColumns, value: Any) -> None:
        # The credential's own ``added_at`` says it; kept for callers that set it.
        return None

    return property(get, set_)


class CredentialColumns:
    """Mixed into ``SmtpSettings`` (the one settings row: credentials belong to it)."""

    client_secret = _secret_property("client_secret")
    password = _secret_property("password")
    client_secret_replaced_at = _replaced_at_property("client_secret")
    password_replaced_at = _replaced_at_property("password")

    def _pending_secrets(self) -> dict[str, Any]:
        pending: dict[str, Any] | None = self.__dict__.get("_secrets_entered")
        if pending is None:
            pending = self.__dict__["_secrets_entered"] = {}
        return pending

    def credential(self, auth_type: str, role: str = Role.IN_USE) -> Credential | None:
        """The credential of ``auth_type`` in ``role``, read once per instance."""
        if getattr(self, "pk", None) is None or getattr(self, "_state").adding:  # noqa: B009
            return None
        cache: dict[tuple[str, str], Credential | None] | None = self.__dict__.get("_credentials")
        if cache is None:
            cache = self.__dict__["_credentials"] = {
                (row.auth_type, row.role): row
                for row in Credential.of_every_connection.filter(connection=self.pk)
            }
        return cache.get((auth_type, role))

    def credentials_delete(self) -> None:
        """Every credential of this row (the row itself is being removed)."""
        Credential.of_every_connection.filter(connection=self.pk).delete()
        self.credentials_forget()

    def credentials_forget(self) -> None:
        self.__dict__.pop("_credentials", None)

    def secrets_store(self) -> None:
        """After the row's save: what was entered replaces the credential in use of its
        type (bound to these values), a cleared one goes, and a secret's typed expiry
        follows the Secret Expiration Date."""
        for auth_type, value in self._pending_secrets().items():
            Credential.of_every_connection.filter(
                connection=self.pk, auth_type=auth_type, role=Role.IN_USE
            ).delete()
            if value:
                Credential.of_every_connection.create(
                    connection=self.pk,
                    auth_type=auth_type,
                    kind=Kind.SECRET if auth_type == OAUTH2 else Kind.PASSWORD,
                    role=Role.IN_USE,
                    material=value,
                    expires_on=getattr(self, "secret_expiration_date", None)
                    if auth_type == OAUTH2
                    else None,
                    added_by=getattr(self, "updated_by", None),
                    bound_to=binding_of(self, auth_type),
                )
        self._pending_secrets().clear()
        Credential.of_every_connection.filter(
            connection=self.pk, auth_type=OAUTH2, role=Role.IN_USE, kind=Kind.SECRET
        ).update(expires_on=getattr(self, "secret_expiration_date", None))
        self.credentials_forget()
