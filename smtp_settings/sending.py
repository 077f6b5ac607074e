"""The saved Manage SMTP settings as the mail engine takes them, and the e-mail backend
that sends with them.

The mail engine is given its settings (``EmailBackend(mail_settings=...)``); this is the
one place that reads them from the database for it. The outbox, the health check and
``SavedSettingsEmailBackend`` (a Django ``EMAIL_BACKEND`` that sends at once) call it.
"""

from __future__ import annotations

import functools

from django.views.decorators.debug import sensitive_variables

from smtp_settings.credentials.fallback import fallback_noted
from smtp_settings.credentials.model import Role
from smtp_settings.crypto import SecretDecryptionError, UnreadableSecret
from smtp_settings.mail.backend import EmailBackend
from smtp_settings.mail.endpoint import MailSettings
from smtp_settings.mail.errors import CredentialFailure
from smtp_settings.models import SECRET_FIELD_BY_AUTH_TYPE, AuthType, SmtpSettings


def saved_mail_settings() -> MailSettings:
    """The saved settings as the mail engine takes them: the credential in use decrypted in
    memory, and (OAuth 2.0) the other one for the token request to fall back on.

    What stops every message (nothing saved, no credential, a key that cannot decrypt it,
    a credential bound elsewhere) is a ``CredentialFailure``: the outbox holds its
    messages until a Save.
    """
    return _mail_settings_of(SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).first())


def saved_fallback_settings() -> MailSettings | None:
    """The fallback connection's settings, None when none is saved; a ``CredentialFailure``
    when one is saved but cannot be used (its secret unreadable, say)."""
    row = SmtpSettings.objects.filter(pk=SmtpSettings.FALLBACK_PK).first()
    return None if row is None else _mail_settings_of(row)


def saved_fallback_settings_to_check() -> MailSettings:
    """The fallback connection's settings for its health check: a ``CredentialFailure``
    (the check's "settings" step) when it was removed meanwhile or cannot be used."""
    mail = saved_fallback_settings()
    if mail is None:
        raise CredentialFailure(
            "The fallback connection was removed.", stage="settings", kind="not_configured"
        )
    return mail


@sensitive_variables("row", "secret")
def _mail_settings_of(row: SmtpSettings | None) -> MailSettings:
    if row is None or not row.is_configured:
        raise CredentialFailure(
            "Manage SMTP has no saved settings yet: mail waits until an administrator saves them.",
            stage="settings",
            kind="not_configured",
        )
    values = row.connection_values()
    if row.auth_type not in SECRET_FIELD_BY_AUTH_TYPE:
        return MailSettings.from_values(values)
    in_use = row.credential(row.auth_type)
    if in_use is None or in_use.moved_by(values):
        # Bound elsewhere can only be a row changed behind the form's back: never sent.
        raise CredentialFailure(
            "No secret is stored for the configured authentication type.",
            stage="settings",
            kind="no_secret",
        )
    try:
        secret = in_use.engine_credential()
    except SecretDecryptionError as error:
        raise CredentialFailure(str(error), stage="settings", kind="undecryptable") from None
    if not secret:
        raise CredentialFailure(
            "No secret is stored for the configured authentication type.",
            stage="settings",
            kind="no_secret",
        )
    other = row.credential(row.auth_type, Role.NEXT) if row.auth_type == AuthType.OAUTH2 else None
    if other is None or other.moved_by(values) or isinstance(other.material, UnreadableSecret):
        return MailSettings.from_values(values, secret=secret, credential_name=in_use.name)
    fallback = other.engine_credential()
    return MailSettings.from_values(
        values,
        secret=secret,
        credential_name=in_use.name,
        fallback=fallback,
        fallback_name=other.name,
        on_fallback=functools.partial(fallback_noted, refused_id=in_use.pk, used_id=other.pk),
    )


class SavedSettingsEmailBackend(EmailBackend):
    """The mail engine's backend over the saved settings, read again at each open: a Save
    takes effect at the next. For ``EMAIL_BACKEND`` (or post_office's) to send at once."""

    def load_settings(self) -> MailSettings:
        return saved_mail_settings()
