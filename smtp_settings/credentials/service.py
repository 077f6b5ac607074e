"""What the Credentials section of Manage SMTP does: make, import, add, check, promote and
remove credentials; every change in Activity. Views call these; no logic lives there.

A credential is made or entered for the saved settings (their token endpoint, client ID and
scopes): it is bound there, and the mail engine never sends it anywhere else.
"""

from __future__ import annotations

import logging
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.views.decorators.debug import sensitive_variables

from activity.models import Kind as ActivityKind
from activity.service import activity_record
from smtp_settings import outbox
from smtp_settings.credentials.model import OAUTH2, Credential, Kind, Role, binding_of
from smtp_settings.mail import certificate
from smtp_settings.models import SmtpSettings, saved_settings_fingerprint

logger = logging.getLogger(__name__)

# Where Entra lists what the page names, for the steps the administrator does there.
ENTRA_PLACE = "Entra ID > App registrations > the app > Certificates & secrets"


class CredentialRefused(ValueError):
    """The action cannot be done as asked; the message says why and what to do."""


def _oauth_settings() -> SmtpSettings:
    row = SmtpSettings.objects.select_for_update().filter(pk=SmtpSettings.SINGLETON_PK).first()
    if row is None or row.auth_type != OAUTH2 or not (row.client_id and row.token_endpoint):
        raise CredentialRefused(
            "Save the OAuth 2.0 settings (Client ID and Token Endpoint) first: a credential "
            "is made for the app and token endpoint saved there, and used only with them."
        )
    return row


def _free_role(row: SmtpSettings) -> str:
    """In use when there is none yet, else next; refused when both are taken."""
    row.credentials_forget()
    if row.credential(OAUTH2) is None:
        return Role.IN_USE
    if row.credential(OAUTH2, Role.NEXT) is None:
        return Role.NEXT
    raise CredentialRefused(
        "There are two credentials already (the one in use and the next one): remove one "
        "before adding another."
    )


def _record(summary: str, user: AbstractBaseUser | None) -> None:
    logger.info("Credentials: %s", summary)
    activity_record(
        kind=ActivityKind.CREDENTIALS_CHANGED, summary=f"Credentials: {summary}", actor=user
    )


def _settings_changed(row: SmtpSettings, user: AbstractBaseUser | None) -> None:
    """The credential in use changed: the saved settings' fingerprint (what Validate runs
    are matched with) and version (an open page's Save is stale now) follow, and held mail
    gets one more attempt."""
    row.credentials_forget()
    in_use = row.credential(OAUTH2)
    expires = in_use.expires_on if in_use is not None and in_use.kind == Kind.SECRET else None
    row.secret_expiration_date = expires or row.secret_expiration_date
    SmtpSettings.objects.filter(pk=row.pk).update(
        secret_expiration_date=row.secret_expiration_date,
        fingerprint=saved_settings_fingerprint(row),
        version=F("version") + 1,
    )
    outbox.outbox_release_held(by=user)


@sensitive_variables("pair")
def _store_pair(
    pair: certificate.KeyPair, *, user: AbstractBaseUser | None, how: str
) -> Credential:
    with transaction.atomic():
        row = _oauth_settings()
        role = _free_role(row)
        credential = Credential.objects.create(
            auth_type=OAUTH2,
            kind=Kind.CERTIFICATE,
            role=role,
            material=pair.private_key_pem,
            certificate_pem=pair.certificate.pem,
            thumbprint=pair.certificate.thumbprint,
            expires_on=pair.certificate.not_after.date(),
            added_by=user,
            bound_to=binding_of(row, OAUTH2),
        )
        _record(
            f"{how} {credential.name} (expires {credential.expires_on:%Y-%m-%d}) as the "
            f"{credential.get_role_display().lower()} credential of client {row.client_id}; "
            f"upload its .cer in {ENTRA_PLACE} > Certificates.",
            user,
        )
        if role == Role.IN_USE:
            _settings_changed(row, user)
        return credential


@sensitive_variables("key_pem", "pair")
def certificate_put_in_use(
    *, row: SmtpSettings, key_pem: str, certificate_pem: str, user: AbstractBaseUser | None
) -> Credential:
    """The setup assistant's certificate, saved by Manage SMTP: the credential in use now
    (it replaces the one in use, as a secret entered in the form does)."""
    pair = certificate.read((certificate_pem + key_pem).encode("ascii"))
    Credential.objects.filter(auth_type=OAUTH2, role=Role.IN_USE).delete()
    credential = Credential.objects.create(
        auth_type=OAUTH2,
        kind=Kind.CERTIFICATE,
        role=Role.IN_USE,
        material=pair.private_key_pem,
        certificate_pem=pair.certificate.pem,
        thumbprint=pair.certificate.thumbprint,
        expires_on=pair.certificate.not_after.date(),
        added_by=user,
        bound_to=binding_of(row, OAUTH2),
    )
    row.credentials_forget()
    return credential


def certificate_create(*, months: int, user: AbstractBaseUser | None) -> Credential:
    """A new key pair and self-signed certificate for the saved app (the key never leaves)."""
    row = SmtpSettings.load()
    try:
        pair = certificate.make(
            common_name=f"SEI Administration mail {row.client_id}", months=months
        )
    except certificate.CertificateRefused as refused:
        raise CredentialRefused(str(refused)) from None
    return _store_pair(pair, user=user, how="created")


@sensitive_variables("pair")
def key_pair_for(*, client_id: str, months: int = certificate.DEFAULT_MONTHS) -> tuple[str, str]:
    """A key pair and certificate not stored as a credential yet (the setup assistant holds
    it for its session): the private key's PEM and the certificate's."""
    pair = certificate.make(common_name=f"SEI Administration mail {client_id}", months=months)
    return pair.private_key_pem, pair.certificate.pem


def thumbprint_of(certificate_pem: str) -> str:
    return certificate.thumbprint_of(certificate_pem)


def public_file(certificate_pem: str, form: str) -> tuple[bytes, str]:
    """The public certificate as a download: the .cer (DER) Entra's upload takes, or .pem."""
    if form == "cer":
        return certificate.der_of(certificate_pem), "application/pkix-cert"
    return certificate_pem.encode("ascii"), "application/x-pem-file"


@sensitive_variables("pair")
def certificate_import(*, pair: certificate.KeyPair, user: AbstractBaseUser | None) -> Credential:
    """An organisation's certificate with its key, as ``certificate.read`` took it from a
    PFX (with its password) or a PEM."""
    return _store_pair(pair, user=user, how="imported")


@sensitive_variables("value")
def secret_add(*, value: str, expires_on: date, user: AbstractBaseUser | None) -> Credential:
    """A new client secret from Entra, as the next credential (or in use when none is)."""
    with transaction.atomic():
        row = _oauth_settings()
        credential = Credential.objects.create(
            auth_type=OAUTH2,
            kind=Kind.SECRET,
            role=_free_role(row),
            material=value,
            expires_on=expires_on,
            added_by=user,
            bound_to=binding_of(row, OAUTH2),
        )
        _record(
            f"added {credential.name} (expires {expires_on:%Y-%m-%d}) as the "
            f"{credential.get_role_display().lower()} credential.",
            user,
        )
        if credential.role == Role.IN_USE:
            _settings_changed(row, user)
        return credential


def credential_promote(*, credential_id: int, user: AbstractBaseUser | None) -> Credential:
    """Make the next credential the one in use; the old one stays, as the fallback."""
    with transaction.atomic():
        row = _oauth_settings()
        chosen = Credential.objects.select_for_update().filter(pk=credential_id).first()
        if chosen is None or chosen.role != Role.NEXT or chosen.auth_type != OAUTH2:
            raise CredentialRefused("Only the next credential can be made the one in use.")
        if chosen.moved_by(row.connection_values()):
            raise CredentialRefused(
                "This credential was added for other settings (another app, token endpoint "
                "or server): it is never used with these. Remove it."
            )
        old = Credential.objects.filter(auth_type=OAUTH2, role=Role.IN_USE).first()
        # Through a third role: one in use and one next at every moment the rows are read.
        Credential.objects.filter(pk=chosen.pk).update(role="swap", refused_at=None)
        if old is not None:
            Credential.objects.filter(pk=old.pk).update(role=Role.NEXT, refused_at=None)
        Credential.objects.filter(pk=chosen.pk).update(role=Role.IN_USE)
        chosen.refresh_from_db()
        _record(
            f"{chosen.name} is now the credential in use"
            + (
                f"; {old.name} stays as the fallback until you remove it (then delete it in "
                f"{ENTRA_PLACE} too)."
                if old is not None
                else "."
            ),
            user,
        )
        _settings_changed(row, user)
        return chosen


def credential_remove(*, credential_id: int, user: AbstractBaseUser | None) -> str:
    """Remove a credential that is not in use; what is left to do in Entra, in words."""
    with transaction.atomic():
        row = SmtpSettings.objects.select_for_update().filter(pk=SmtpSettings.SINGLETON_PK).first()
        chosen = Credential.objects.select_for_update().filter(pk=credential_id).first()
        if row is None or chosen is None:
            raise CredentialRefused("That credential is gone already.")
        if chosen.role == Role.IN_USE:
            raise CredentialRefused(
                "This is the credential in use: make the next one the one in use first (or "
                "enter a new client secret in the form)."
            )
        chosen.delete()
        where = (
            f"the certificate with thumbprint {chosen.thumbprint}"
            if chosen.kind == Kind.CERTIFICATE
            else f"the client secret that expires on {chosen.expires_on or 'its date'}"
        )
        todo = f"Delete {where} in {ENTRA_PLACE} too, so that it cannot be used any more."
        _record(f"removed {chosen.name}. {todo}", user)
        return todo


def credentials_for_page(row: SmtpSettings) -> list[Credential]:
    """The OAuth credentials as the section lists them: the one in use first."""
    if not row.is_stored:
        return []
    found = [row.credential(OAUTH2, role) for role in (Role.IN_USE, Role.NEXT)]
    return [credential for credential in found if credential is not None]
