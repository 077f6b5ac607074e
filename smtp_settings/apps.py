from __future__ import annotations

from django.apps import AppConfig


class SmtpSettingsConfig(AppConfig):
    name = "smtp_settings"
    verbose_name = "Manage SMTP"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from smtp_settings import assistant  # noqa: F401  (erases on sign-out)
        from smtp_settings.monitoring import outbox_alerts  # noqa: F401  (tells the outbox's turns)
