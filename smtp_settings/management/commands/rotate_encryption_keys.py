"""Re-encrypt every stored secret with the first key of SEI_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from smtp_settings import crypto
from smtp_settings.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Rewrite every encrypted column with the first key of SEI_ENCRYPTION_KEYS, so older "
        "keys can then be removed from the list."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rewritten = 0
        try:
            with transaction.atomic():
                for model in apps.get_models():
                    for field in model._meta.concrete_fields:
                        if isinstance(field, EncryptedTextField):
                            rewritten += self._rotate_column(model, field)
        except crypto.SecretDecryptionError as exc:
            raise CommandError(f"{exc} Nothing was changed.") from exc
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rewritten} stored secret(s)."))

    def _rotate_column(self, model: Any, field: EncryptedTextField) -> int:
        # Raw SQL: the model layer would decrypt on read, and the ciphertext is what rotates.
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(field.column)
        pk = connection.ops.quote_name(model._meta.pk.column)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {pk}, {column} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608
            rows = cursor.fetchall()
            for row_pk, token in rows:
                cursor.execute(
                    f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608
                    [crypto.rotate(token), row_pk],
                )
        return len(rows)
