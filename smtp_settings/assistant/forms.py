"""The setup assistant's forms, one per part of the page: field rules only, no network.

Fields Manage SMTP has too take its labels, lengths and validators (``settings_field``);
only the words that guide each step are the assistant's own."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.utils import timezone

from smtp_settings import validators
from smtp_settings.assistant import clouds
from smtp_settings.forms import secret_field, settings_field, tenant_field
from smtp_settings.models import Transport


class AppForm(forms.Form):
    """Step 1: which cloud, which tenant, which app."""

    cloud = forms.ChoiceField(
        label="Microsoft cloud",
        help_text="Where your tenant lives. Almost every organisation: Microsoft 365 worldwide.",
    )
    tenant = tenant_field(
        help_text="On the app registration's Overview page. One of the tenant's domains "
        "(contoso.onmicrosoft.com) works too: the check looks up the ID.",
    )
    # Labels in the Entra admin center's words, where they differ from Manage SMTP's.
    client_id = settings_field(
        "client_id",
        label="Application (client) ID",
        required=True,
        help_text="On the same Overview page, above the Directory (tenant) ID.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cloud = self.fields["cloud"]
        assert isinstance(cloud, forms.ChoiceField)
        cloud.choices = clouds.cloud_choices()

    def clean_tenant(self) -> str:
        return self.cleaned_data["tenant"].strip().lower()

    def clean_client_id(self) -> str:
        return self.cleaned_data["client_id"].strip().lower()


class SecretForm(forms.Form):
    """Step 4: the secret's Value and its expiry date."""

    client_secret = secret_field(
        "client_secret",
        label="Client secret Value",
        help_text="The Value column, copied right after creating the secret (Entra shows it "
        "only then). The Secret ID beside it is not the secret.",
    )
    secret_expiration_date = settings_field(
        "secret_expiration_date",
        help_text='The "Expires" date beside the secret: reminders go out before it.',
    )

    def __init__(self, *args: Any, secret_held: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secret_held = secret_held

    def clean_secret_expiration_date(self) -> date | None:
        # A new secret expires in the future; a past date is a mistyped or an old secret's
        # date, and the reminders would never come.
        value: date | None = self.cleaned_data.get("secret_expiration_date")
        if value is not None and value < timezone.localdate():
            raise forms.ValidationError(
                f"{value:%Y-%m-%d} is in the past. Copy the Expires date of the secret you "
                "just created (a secret past that date no longer works)."
            )
        return value

    def clean_client_secret(self) -> str:
        value: str = self.cleaned_data.get("client_secret") or ""
        if not value.strip() and not self.secret_held:
            raise forms.ValidationError("Paste the secret's Value from Certificates & secrets.")
        if value != value.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise forms.ValidationError(
                "The Value has spaces or line breaks around it: copy it again with the copy "
                "icon next to it."
            )
        return value


class TransportForm(forms.Form):
    """Step 2: which permission the app gets, and so how the console sends."""

    transport = forms.ChoiceField(
        label="Send through",
        choices=[
            (Transport.SMTP, "SMTP: Office 365 Exchange Online > SMTP.SendAsApp"),
            (Transport.GRAPH, "Microsoft Graph: Microsoft Graph > Mail.Send"),
        ],
        widget=forms.RadioSelect,
        help_text="Microsoft Graph works where SMTP AUTH is switched off (new tenants have "
        "it off by default), and needs no SMTP server.",
    )


class MailboxForm(forms.Form):
    """Step 5: the mailbox (or mailboxes) the app sends as, and the SMTP server (not with
    Microsoft Graph: ``graph``, which has no server to ask for and another role to grant)."""

    sender_email = settings_field(
        "sender_email",
        help_text="The mailbox the console sends as; the app gets FullAccess on it.",
    )
    use_sender_email = settings_field(
        "use_sender_email",
        help_text="On: every message goes out from Sender Email, so only that mailbox needs "
        "access. Off: messages keep each user's address, and each such mailbox needs access.",
    )
    mailboxes = forms.CharField(
        label="Other mailboxes that send",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Only with Use sender email off: every user mailbox that sends through the "
        "console, separated by commas or lines.",
    )
    smtp_server = settings_field(
        "smtp_server",
        required=True,
        help_text="Exchange Online: smtp.office365.com (filled in for the cloud chosen above).",
    )
    port = settings_field(
        "port",
        help_text="587: STARTTLS, as Exchange Online expects.",
    )

    def __init__(self, *args: Any, graph: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.graph = graph
        if graph:
            # Graph's host follows the cloud; the SMTP server and port are not asked.
            del self.fields["smtp_server"], self.fields["port"]
            self.fields["sender_email"].help_text = (
                "The mailbox the console sends as; the app gets the role Application "
                "Mail.Send for it (RBAC for Applications), and for no other mailbox."
            )

    def clean_mailboxes(self) -> str:
        return ", ".join(validators.parse_addresses(self.cleaned_data.get("mailboxes", "")))
