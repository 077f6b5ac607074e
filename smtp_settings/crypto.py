"""Authenticated encryption of secrets at rest, keyed by ``SEI_ENCRYPTION_KEYS``.

The first key encrypts; every key decrypts, so a new key can be put first and
the old ones kept until ``rotate_encryption_keys`` has rewritten every secret.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class SecretDecryptionError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


class UnreadableSecret:
    """What a stored secret reads as when no configured key decrypts it.

    Not a string, so it can never be sent as a secret by mistake; it keeps the
    ciphertext so that saving the row leaves the column as it was (the right key may
    come back), and it is truthy: a secret *is* stored.
    """

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self.ciphertext = ciphertext

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "<a stored secret no configured key decrypts>"

    __str__ = __repr__


@cache
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _multifernet(tuple(settings.SEI_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        # Never hand back the ciphertext or an empty string: a caller would send it as a secret.
        raise SecretDecryptionError(
            "A stored secret cannot be decrypted with any key in SEI_ENCRYPTION_KEYS. "
            "Restore the key it was encrypted with (keep old keys after the new one "
            "until rotate_encryption_keys has run), or enter the secret again."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt ``token`` with the first key."""
    try:
        return _current().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise SecretDecryptionError(
            "A stored secret cannot be decrypted with any key in SEI_ENCRYPTION_KEYS, "
            "so it cannot be rotated."
        ) from exc


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: object) -> None:
    if setting == "SEI_ENCRYPTION_KEYS":
        _multifernet.cache_clear()
