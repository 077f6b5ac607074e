"""The Manage SMTP form: field rules only; it never talks to the network."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from django import forms
from django.utils import timezone

from smtp_settings import validators
from smtp_settings.crypto import UnreadableSecret
from smtp_settings.mail import microsoft
from smtp_settings.models import (
    AUTH_TYPE_OF_SECRET,
    EDITABLE_FIELDS,
    SECRET_LABELS,
    AuthType,
    SmtpSettings,
    Transport,
)
from smtp_settings.transport_form import TransportFields

OFFICE365_HOST = "smtp.office365.com"

# Which fields each authentication type uses; the others are hidden and left as stored.
OAUTH_FIELDS = (
    "client_id",
    "client_secret",
    "secret_expiration_alert",
    "secret_expiration_date",
    "alert_recipients",
    "tenant_id",
    "token_endpoint",
    "scopes",
)
BASIC_FIELDS = ("username", "password")
FIELDS_BY_AUTH_TYPE = {
    AuthType.OAUTH2: OAUTH_FIELDS,
    AuthType.BASIC: BASIC_FIELDS,
    AuthType.NONE: (),
}


class StrictEmailField(forms.EmailField):
    """An address checked for line breaks before Django strips the surrounding white space."""

    default_validators = [*forms.EmailField.default_validators, validators.validate_smtp_address]

    def to_python(self, value: Any) -> str:
        if isinstance(value, str):
            validators.validate_no_control_characters(value)
        return super().to_python(value)


class SecretInput(forms.PasswordInput):
    """Write-only: whatever is stored is never rendered back into the page."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            attrs={"autocomplete": "new-password", **(attrs or {})}, render_value=False
        )


_DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")

# Each field's rules beyond the model's label, length and requiredness, said once: Manage
# SMTP and the setup assistant both build their fields from here (``settings_field``).
FIELD_RULES: dict[str, dict[str, Any]] = {
    "smtp_server": {"validators": [validators.validate_host]},
    "sender_email": {"form_class": StrictEmailField},
    "port": {"min_value": 1, "max_value": 65535},
    "client_id": {"validators": [validators.validate_client_id]},
    "secret_expiration_date": {
        "validators": [validators.validate_expiration_date],
        "widget": _DATE_INPUT,
    },
    "alert_recipients": {"widget": forms.Textarea(attrs={"rows": 2})},
    "token_endpoint": {
        "assume_scheme": "https",
        "validators": [validators.validate_token_endpoint],
    },
    "scopes": {"validators": [validators.validate_scopes]},
    "username": {"validators": [validators.validate_ascii_credential]},
}


def settings_field(name: str, **overrides: Any) -> forms.Field:
    """The model field's form field (its label, length and requiredness) with its rules
    (``FIELD_RULES``); ``overrides`` add a page's own words."""
    field = SmtpSettings._meta.get_field(name).formfield(
        **{**FIELD_RULES.get(name, {}), **overrides}
    )
    assert field is not None
    return field


def secret_field(name: str, **overrides: Any) -> forms.CharField:
    """A secret's field: write-only, never required (blank keeps the stored one)."""
    return forms.CharField(
        **{
            "label": SECRET_LABELS[name],
            "max_length": 1024,
            "required": False,
            "widget": SecretInput(),
            **overrides,
        }
    )


def tenant_field(**overrides: Any) -> forms.CharField:
    """A Directory (tenant) ID: the GUID, or one of the tenant's domains."""
    return forms.CharField(
        **{
            "label": "Directory (tenant) ID",
            "max_length": 253,
            "validators": [validators.validate_tenant],
            **overrides,
        }
    )


class SmtpSettingsForm(TransportFields, forms.ModelForm):
    smtp_server = settings_field(
        "smtp_server",
        # Required for SMTP; with Graph its error is dropped (TransportFields).
        required=True,
        help_text="The host name of the SMTP server, without scheme or port. "
        "Exchange Online: smtp.office365.com.",
    )
    sender_email = settings_field(
        "sender_email",
        help_text="The mailbox the console sends as. With OAuth 2.0 over SMTP it is also the "
        "mailbox the token signs in as, so the app's service principal needs FullAccess on it; "
        "through Microsoft Graph the app needs the role Application Mail.Send for it instead.",
    )
    port = settings_field(
        "port",
        help_text="587 for Exchange Online (STARTTLS). 465 means TLS from the first byte, "
        "which Exchange Online does not offer for sending.",
    )
    auth_type = settings_field(
        "auth_type",
        help_text="OAuth 2.0 uses an Entra ID app registration instead of a mailbox password.",
    )
    client_id = settings_field(
        "client_id",
        help_text="The Application (client) ID on the app registration's Overview page in "
        "Entra ID.",
    )
    client_secret = secret_field(
        "client_secret",
        help_text="The secret's Value (not its Secret ID) from Certificates & secrets. Entra "
        "shows it only once. Leave blank to keep the stored secret.",
    )
    secret_expiration_alert = settings_field(
        "secret_expiration_alert",
        help_text="E-mail the administrators before the client secret expires, so mail does "
        "not stop without warning.",
    )
    secret_expiration_date = settings_field(
        "secret_expiration_date",
        help_text='The "Expires" date shown next to the secret under Certificates & secrets.',
    )
    alert_recipients = settings_field(
        "alert_recipients",
        help_text="Optional: more addresses for the expiry reminders and health alerts, "
        "separated by commas (for example a shared IT mailbox). Every administrator with "
        "an e-mail address gets them anyway.",
    )
    tenant_id = tenant_field(
        required=False,
        # The page's script fills the Token Endpoint in with Microsoft's rules, given as data
        # rather than written a second time in JavaScript.
        widget=forms.TextInput(
            attrs={
                "data-tenant-pattern": microsoft.TENANT_HINT_PATTERN,
                "data-token-endpoint": microsoft.token_endpoint(
                    microsoft.GLOBAL.login_host, "{tenant}"
                ),
            }
        ),
        help_text="Optional helper: entering the Directory (tenant) ID from the Overview page "
        "fills the Token Endpoint for Microsoft's global cloud.",
    )
    token_endpoint = settings_field(
        "token_endpoint",
        help_text="https://login.microsoftonline.com/<TENANT_ID>/oauth2/v2.0/token with your "
        "Directory (tenant) ID in place of <TENANT_ID>.",
    )
    scopes = settings_field(
        "scopes",
        help_text="Separated by spaces. Exchange Online SMTP: "
        "https://outlook.office365.com/.default.",
    )
    username = settings_field(
        "username",
        help_text="The account the SMTP server authenticates.",
    )
    password = secret_field(
        "password",
        strip=False,
        validators=[validators.validate_ascii_credential],
        help_text="Leave blank to keep the stored password.",
    )
    use_ssl_tls = settings_field(
        "use_ssl_tls",
        help_text="Encrypt the connection (STARTTLS, or TLS from the start on port 465) so the "
        "token, password and messages are not readable on the network.",
    )
    use_sender_email = settings_field(
        "use_sender_email",
        help_text="On: every message is sent from Sender Email, and only that mailbox needs "
        "access for the app (FullAccess for SMTP, Application Mail.Send for Microsoft Graph). "
        "Off: messages go out from each user's own address, and every such mailbox needs it.",
    )

    # The settings' version when the page was opened: a later Save by someone else wins.
    version = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput())

    class Meta:
        model = SmtpSettings
        fields: ClassVar[list[str]] = list(EDITABLE_FIELDS)

    def __init__(
        self, *args: Any, for_validate: bool = False, setup_secret: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # Validate tests whether mail gets through: what only Save needs becomes a note.
        self.for_validate = for_validate
        # The client secret the setup assistant holds for this session (a HeldSecret), used
        # when the field is left blank; whether it was.
        self.setup_secret = setup_secret
        self.used_setup_secret = False
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.fields["version"].initial = self.instance.version
        if self.instance.token_endpoint:
            tenant = microsoft.tenant_from_token_endpoint(self.instance.token_endpoint)
            self.fields["tenant_id"].initial = tenant

    def clean_alert_recipients(self) -> str:
        return ", ".join(validators.parse_addresses(self.cleaned_data.get("alert_recipients", "")))

    # -- rules that span fields -------------------------------------------------

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        auth_type = cleaned.get("auth_type") or AuthType.OAUTH2
        used = FIELDS_BY_AUTH_TYPE.get(auth_type, ())
        for name in set(OAUTH_FIELDS + BASIC_FIELDS) - set(used):
            # Hidden for this type: neither required nor changed.
            self.errors.pop(name, None)
            cleaned.pop(name, None)
        if auth_type != AuthType.NONE and cleaned.get("use_ssl_tls") is False:
            self.add_error(
                "use_ssl_tls",
                "Credentials are never sent over an unencrypted connection: turn Use SSL/TLS "
                "on, or choose Authentication Type None for a relay that takes mail without "
                "signing in.",
            )
        if auth_type == AuthType.OAUTH2:
            self._clean_oauth(cleaned)
        elif auth_type == AuthType.BASIC:
            self._clean_basic(cleaned)
        self._collect_warnings(cleaned)
        return cleaned

    def _clean_oauth(self, cleaned: dict[str, Any]) -> None:
        tenant = cleaned.get("tenant_id")
        if tenant and not cleaned.get("token_endpoint") and "token_endpoint" not in self.errors:
            cleaned["token_endpoint"] = microsoft.token_endpoint(
                microsoft.GLOBAL.login_host, tenant
            )
        in_endpoint = microsoft.tenant_from_token_endpoint(cleaned.get("token_endpoint") or "")
        if tenant and in_endpoint and tenant.lower() != in_endpoint.lower():
            # Tokens come from the Token Endpoint's tenant: the other would be ignored.
            self.add_error(
                "tenant_id",
                f"The Token Endpoint names tenant {in_endpoint}, not {tenant}: make them the "
                "same (or empty this field to keep the Token Endpoint's).",
            )
        # Graph's scope is fixed per cloud: Scopes is SMTP's alone.
        required = ("client_id", "token_endpoint") + (
            () if cleaned.get("transport") == Transport.GRAPH else ("scopes",)
        )
        for name in required:
            if not cleaned.get(name) and name not in self.errors:
                self.add_error(name, f"{self.fields[name].label} is required for OAuth 2.0.")
        self._require_secret("client_secret", cleaned, "Enter the client secret's Value.")
        too_late = _past_entras_limit(cleaned.get("secret_expiration_date"))
        if too_late:
            self.add_error("secret_expiration_date", too_late)
        date_given = cleaned.get("secret_expiration_date") or too_late
        if cleaned.get("secret_expiration_alert") and not date_given and _typed_expiry(self):
            if self.for_validate:
                self.notes.append(
                    "Secret Expiration Date is empty: Save will ask for it (the reminders need it)."
                )
            else:
                self.add_error(
                    "secret_expiration_date",
                    "Enter the date the secret expires, or turn Secret Expiration Alert off.",
                )

    def _clean_basic(self, cleaned: dict[str, Any]) -> None:
        if not cleaned.get("username") and "username" not in self.errors:
            self.add_error("username", "Username is required for Basic authentication.")
        self._require_secret("password", cleaned, "Enter the password.")

    def _require_secret(self, name: str, cleaned: dict[str, Any], missing: str) -> None:
        """A blank secret field means the stored one, but only where it was entered; or the
        one the setup assistant holds, for the sign-in host and app it was entered for."""
        if cleaned.get(name):
            return
        held = self.setup_secret
        if (
            name == "client_secret"
            and held is not None
            and held.fits(
                token_endpoint=cleaned.get("token_endpoint") or "",
                client_id=cleaned.get("client_id") or "",
            )
        ):
            cleaned[name] = held.secret
            # A certificate made in the assistant: its key is never a client secret.
            cleaned["client_certificate_pem"] = held.certificate_pem
            self.used_setup_secret = True
            return
        stored = self.instance if self.instance.is_stored else None
        # The credential in use: a secret, or a certificate from the Credentials section.
        credential = stored.credential(AUTH_TYPE_OF_SECRET[name]) if stored else None
        if credential is None:
            self.add_error(name, missing)
            return
        if isinstance(credential.material, UnreadableSecret):
            self.add_error(
                name,
                "The stored secret cannot be decrypted with the configured encryption keys: "
                "enter it again (saving replaces it).",
            )
            return
        changed = [str(self.fields[field].label) for field in credential.moved_by(cleaned)]
        if changed:
            label = str(self.fields[name].label).lower()
            self.add_error(
                name,
                f"Enter the {label} again: {', '.join(changed)} changed. A stored secret is "
                "only ever sent where it was entered.",
            )

    def _collect_warnings(self, cleaned: dict[str, Any]) -> None:
        expires = cleaned.get("secret_expiration_date")
        if not self.for_validate and self.data.get("client_secret"):
            self.warnings += _old_date_kept(self.instance, expires)
        # Once saved, the expired-secret banner says it: the page says each cause once.
        if expires and expires < timezone.localdate() and self.for_validate:
            self.warnings.append(
                f"The client secret expired on {expires:%Y-%m-%d}: token requests will fail "
                "until you create a new secret in Entra ID and enter it with its new date."
            )
        host = (cleaned.get("smtp_server") or "").lower()
        if host == OFFICE365_HOST:
            if cleaned.get("port") == 465:
                self.warnings.append(
                    "Exchange Online does not accept mail submission on port 465; use 587 "
                    "with Use SSL/TLS on (STARTTLS)."
                )
            if cleaned.get("use_ssl_tls") is False:
                self.warnings.append(
                    "Use SSL/TLS is off: Exchange Online takes no mail without STARTTLS."
                )


def _typed_expiry(form: SmtpSettingsForm) -> bool:
    """Whether the OAuth credential has a date to type: not for a certificate (its expiry is
    read from it), held by the setup assistant or in use."""
    held = form.setup_secret
    if form.used_setup_secret and held is not None and held.certificate_pem:
        return False
    if form.data.get("client_secret") or not form.instance.is_stored:
        return True
    credential = form.instance.credential(AuthType.OAUTH2)
    return credential is None or credential.kind != "certificate"


def _past_entras_limit(expires: date | None) -> str:
    """Why a Secret Expiration Date cannot be a client secret's, or ""."""
    months = microsoft.SECRET_LONGEST_MONTHS
    limit = microsoft.secret_expires_by(timezone.localdate())
    if expires is None or expires <= limit:
        return ""
    return (
        f"Entra ID lets a client secret last at most {months} months, so this one expires by "
        f"{limit:%Y-%m-%d}. Copy the Expires date shown beside the secret under Certificates "
        "& secrets."
    )


def _old_date_kept(stored: SmtpSettings, expires: date | None) -> list[str]:
    """A new secret saved with the old one's date: kept silently, the reminders would follow
    the old secret's end."""
    if not (stored.is_stored and stored.client_secret and expires is not None):
        return []
    if expires != stored.secret_expiration_date:
        return []
    return [
        f"The client secret was replaced but Secret Expiration Date still says "
        f"{expires:%Y-%m-%d}, the old secret's. Enter the new secret's Expires date "
        "(Certificates & secrets shows it beside the secret): the reminders follow it."
    ]


class TestRecipientForm(forms.Form):
    """The optional address Validate ends by sending a real message to."""

    test_recipient = StrictEmailField(
        label="Send test email to",
        max_length=254,
        required=False,
        help_text="Optional. Validate then ends by sending a real message from Sender Email "
        "to this address.",
    )
