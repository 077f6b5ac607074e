from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("smtp_settings", "0008_credentials"),
    ]

    operations = [
        migrations.AddField(
            model_name="smtpsettings",
            name="transport",
            field=models.CharField(
                choices=[
                    ("smtp", "SMTP (OAuth 2.0 / Basic / none)"),
                    ("graph", "Microsoft Graph (OAuth 2.0)"),
                ],
                default="smtp",
                max_length=10,
                verbose_name="Send through",
            ),
        ),
        migrations.AddField(
            model_name="smtpsettings",
            name="graph_host",
            field=models.CharField(blank=True, max_length=260, verbose_name="Graph Host"),
        ),
        migrations.AddField(
            model_name="setupassistant",
            name="transport",
            field=models.CharField(
                choices=[
                    ("smtp", "SMTP (OAuth 2.0 / Basic / none)"),
                    ("graph", "Microsoft Graph (OAuth 2.0)"),
                ],
                default="smtp",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="delivery",
            name="connection",
            field=models.CharField(blank=True, max_length=10),
        ),
        migrations.AlterField(
            model_name="smtpsettings",
            name="smtp_server",
            field=models.CharField(blank=True, max_length=253, verbose_name="SMTP Server"),
        ),
    ]
