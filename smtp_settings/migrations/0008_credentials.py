"""Credentials become rows: the client secret and the Basic password of the settings move,
still encrypted and with no re-entry, to ``Credential`` rows in use, each bound to the
values it was entered for and (a secret) with its Secret Expiration Date."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import smtp_settings.fields

BOUND_TO = {
    "oauth2": ("smtp_server", "port", "use_ssl_tls", "token_endpoint", "client_id", "scopes"),
    "basic": ("smtp_server", "port", "use_ssl_tls", "username"),
}
COLUMNS = {"oauth2": "client_secret", "basic": "password"}


def secrets_to_rows(apps, schema_editor):
    settings_model = apps.get_model("smtp_settings", "SmtpSettings")
    credential_model = apps.get_model("smtp_settings", "Credential")
    for row in settings_model.objects.all():
        for auth_type, column in COLUMNS.items():
            material = getattr(row, column)
            if not material:
                continue
            credential_model.objects.create(
                connection=row.pk,
                auth_type=auth_type,
                kind="secret" if auth_type == "oauth2" else "password",
                role="in_use",
                # Read and written through the encrypted field: an unreadable value is
                # written back as the ciphertext it was.
                material=material,
                expires_on=row.secret_expiration_date if auth_type == "oauth2" else None,
                added_at=getattr(row, f"{column}_replaced_at") or row.updated_at,
                added_by_id=row.updated_by_id,
                bound_to={name: getattr(row, name) for name in BOUND_TO[auth_type]},
            )


def rows_to_secrets(apps, schema_editor):
    settings_model = apps.get_model("smtp_settings", "SmtpSettings")
    credential_model = apps.get_model("smtp_settings", "Credential")
    row = settings_model.objects.filter(pk=1).first()
    if row is None:
        return
    for credential in credential_model.objects.filter(role="in_use").exclude(kind="certificate"):
        column = COLUMNS[credential.auth_type]
        setattr(row, column, credential.material)
        setattr(row, f"{column}_replaced_at", credential.added_at)
    row.save()


class Migration(migrations.Migration):
    dependencies = [
        ("smtp_settings", "0007_delivery_priority"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Credential",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("connection", models.PositiveSmallIntegerField(default=1)),
                ("auth_type", models.CharField(max_length=10)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("secret", "Client secret"),
                            ("certificate", "Certificate"),
                            ("password", "Password"),
                        ],
                        max_length=12,
                    ),
                ),
                (
                    "role",
                    models.CharField(
                        choices=[("in_use", "In use"), ("next", "Next")],
                        default="in_use",
                        max_length=8,
                    ),
                ),
                (
                    "material",
                    smtp_settings.fields.EncryptedTextField(
                        blank=True, editable=False, null=True, verbose_name="Secret material"
                    ),
                ),
                ("certificate_pem", models.TextField(blank=True)),
                ("thumbprint", models.CharField(blank=True, max_length=40)),
                ("expires_on", models.DateField(blank=True, null=True)),
                ("added_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("bound_to", models.JSONField(default=dict)),
                ("checked_at", models.DateTimeField(blank=True, null=True)),
                ("check_passed", models.BooleanField(blank=True, null=True)),
                ("refused_at", models.DateTimeField(blank=True, null=True)),
                ("refused_answer", models.TextField(blank=True)),
                (
                    "added_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "default_manager_name": "objects",
                "ordering": ["auth_type", "-role", "added_at"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("connection", "auth_type", "role"),
                        name="one_credential_per_role",
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="setupsecret",
            name="certificate_pem",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(secrets_to_rows, rows_to_secrets),
        migrations.RemoveField(model_name="smtpsettings", name="client_secret"),
        migrations.RemoveField(model_name="smtpsettings", name="client_secret_replaced_at"),
        migrations.RemoveField(model_name="smtpsettings", name="password"),
        migrations.RemoveField(model_name="smtpsettings", name="password_replaced_at"),
    ]
