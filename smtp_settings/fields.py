"""A model field whose column holds only Fernet ciphertext."""

from __future__ import annotations

from typing import Any

from django.db import models

from smtp_settings import crypto


class EncryptedTextField(models.TextField):
    """Plain text in Python, ciphertext in the database; ``None`` means no secret stored.

    Decryption failures raise :class:`crypto.SecretDecryptionError` rather than
    returning something that looks like a secret.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return None
        return crypto.encrypt(value)

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return crypto.decrypt(value)
