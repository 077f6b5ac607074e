"""Secrets at rest: ciphertext only in the column, rotation, and a clear error for a wrong key."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from smtp_settings.crypto import SecretDecryptionError, UnreadableSecret
from smtp_settings.models import SmtpSettings

pytestmark = pytest.mark.django_db

SECRET = "Xq8~Qm2.n7Tz_pL4rS9vWc1yB6dE3fG5hJ0kK-"


def raw_column(column: str) -> str | None:
    """The ciphertext of the credential in use that holds ``column``'s secret (the client
    secret of OAuth 2.0, the password of Basic), as the database holds it."""
    auth_type = {"client_secret": "oauth2", "password": "basic"}[column]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT material FROM smtp_settings_credential WHERE auth_type = %s AND role = %s",
            [auth_type, "in_use"],
        )
        found = cursor.fetchone()
        return found[0] if found else None


def store(**secrets: str) -> SmtpSettings:
    row = SmtpSettings(pk=1, smtp_server="smtp.office365.com", sender_email="a@contoso.example")
    for name, value in secrets.items():
        setattr(row, name, value)
    row.save()
    return row


def test_database_holds_only_ciphertext() -> None:
    store(client_secret=SECRET, password="hunter2-basic")
    for column, plaintext in (("client_secret", SECRET), ("password", "hunter2-basic")):
        raw = raw_column(column)
        assert raw and plaintext not in raw
        assert raw.startswith("gAAAA")  # a Fernet token


def test_secret_round_trips() -> None:
    store(client_secret=SECRET)
    assert SmtpSettings.load().client_secret == SECRET


def test_no_secret_is_stored_as_null() -> None:
    store()
    assert raw_column("client_secret") is None
    assert SmtpSettings.load().client_secret is None


def test_rotation_rewrites_every_secret_with_the_new_first_key(
    settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    old_key = settings.SEI_ENCRYPTION_KEYS[0]
    store(client_secret=SECRET, password="hunter2-basic")
    before = raw_column("client_secret")
    new_key = Fernet.generate_key().decode()
    settings.SEI_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("rotate_encryption_keys")

    assert "Re-encrypted 2 stored secret(s)" in capsys.readouterr().out
    after = raw_column("client_secret")
    assert after is not None and after != before
    assert Fernet(new_key.encode()).decrypt(after.encode()).decode() == SECRET
    settings.SEI_ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
    assert SmtpSettings.load().client_secret == SECRET
    assert SmtpSettings.load().password == "hunter2-basic"


def test_wrong_key_reads_as_unreadable_and_using_it_raises_a_clear_error(settings: Any) -> None:
    store(client_secret=SECRET)
    original_keys = list(settings.SEI_ENCRYPTION_KEYS)
    settings.SEI_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    row = SmtpSettings.load()  # the row loads: pages stay up
    assert isinstance(row.client_secret, UnreadableSecret)  # never ciphertext, never ""
    assert row.client_secret and "gAAAA" not in repr(row.client_secret)
    with pytest.raises(SecretDecryptionError, match="SEI_ENCRYPTION_KEYS"):
        row.secret_for_auth_type()
    row.save()  # saving other fields keeps the ciphertext as it was
    settings.SEI_ENCRYPTION_KEYS = original_keys
    assert SmtpSettings.load().client_secret == SECRET


def test_rotation_with_an_unknown_key_changes_nothing(settings: Any) -> None:
    store(client_secret=SECRET)
    before = raw_column("client_secret")
    settings.SEI_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="Nothing was changed"):
        call_command("rotate_encryption_keys")
    assert raw_column("client_secret") == before
