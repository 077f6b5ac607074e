"""Migration 0008: the saved client secret and Basic password become credential rows, with
no loss and no re-entry (run on whichever database the suite runs on: SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from smtp_settings.models import SmtpSettings
from smtp_settings.sending import saved_mail_settings

BEFORE = [("smtp_settings", "0007_delivery_priority")]
AFTER = [("smtp_settings", "0008_credentials")]
SECRET = "Mig~rated.Secret_Value-0123456789abcdefgh"
TOKEN_ENDPOINT = "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_a_saved_secret_and_password_become_credentials_in_use() -> None:
    old_apps = migrate(BEFORE)
    old_settings = old_apps.get_model("smtp_settings", "SmtpSettings")
    old_settings.objects.create(
        pk=1,
        smtp_server="smtp.office365.com",
        sender_email="notifications@contoso.example",
        port=587,
        auth_type="oauth2",
        client_id="11111111-2222-3333-4444-555555555555",
        client_secret=SECRET,
        secret_expiration_date=date(2027, 3, 31),
        token_endpoint=TOKEN_ENDPOINT,
        scopes="https://outlook.office365.com/.default",
        username="relay@contoso.example",
        password="basic-pass 42",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret FROM smtp_settings_smtpsettings")
        ciphertext = cursor.fetchone()[0]
    assert SECRET not in ciphertext

    new_apps = migrate(AFTER)
    credential = new_apps.get_model("smtp_settings", "Credential")
    rows = {row.auth_type: row for row in credential.objects.all()}
    assert rows["oauth2"].kind == "secret" and rows["oauth2"].role == "in_use"
    assert rows["oauth2"].expires_on == date(2027, 3, 31)
    assert rows["oauth2"].bound_to["token_endpoint"] == TOKEN_ENDPOINT
    assert rows["oauth2"].bound_to["port"] == 587
    assert rows["basic"].kind == "password"
    assert rows["basic"].bound_to["username"] == "relay@contoso.example"
    with connection.cursor() as cursor:
        cursor.execute("SELECT material FROM smtp_settings_credential")
        stored = [value for (value,) in cursor.fetchall()]
    assert all(value.startswith("gAAAA") and SECRET not in value for value in stored)

    migrate(
        [max(MigrationExecutor(connection).loader.graph.leaf_nodes("smtp_settings"))]
    )  # the rest of the suite's schema
    row = SmtpSettings.load()
    assert row.client_secret == SECRET and row.password == "basic-pass 42"
    assert saved_mail_settings().secret == SECRET
    # Still bound where it was entered: another Client ID would need it again.
    assert row.credential("oauth2").moved_by({"client_id": "99999999-2222-3333-4444-5555"}) == [
        "client_id"
    ]
