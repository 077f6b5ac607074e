from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and sign-in"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import signin_activity  # noqa: F401  (sign-ins into the activity trail)
