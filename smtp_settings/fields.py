"""A model field whose column holds only Fernet ciphertext."""

from __future__ import annotations

from typing import Any

from django.db import models

from smtp_settings import crypto


class EncryptedTextField(models.TextField):
    """Plain text in Python, ciphertext in the database; ``None`` means no secret stored.

    A value no configured key decrypts reads as :class:`crypto.UnreadableSecret`, never
    as something that looks like a secret (ciphertext or "").
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def get_prep_value(self, value: Any) -> str | None:
        if isinstance(value, crypto.UnreadableSecret):
            return value.ciphertext  # written back untouched
        value = super().get_prep_value(value)
        if value is None or value == "":
            return None
        return crypto.encrypt(value)

    def from_db_value(
        self, value: str | None, expression: Any, connection: Any
    ) -> str | crypto.UnreadableSecret | None:
        if value is None:
            return None
        try:
            return crypto.decrypt(value)
        except crypto.SecretDecryptionError:
            # The pages stay up and say so; using it as a secret raises where it is read.
            return crypto.UnreadableSecret(value)
