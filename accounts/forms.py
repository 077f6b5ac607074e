"""Field rules for the accounts pages; no database writes here (services do those)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.utils.encoding import punycode


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        help_text="The six digits your authenticator app shows now, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
    )


class AppCodeForm(CodeForm):
    code = forms.CharField(
        label="Code from the app",
        max_length=32,
        strip=True,
        help_text="After adding the account in the app, type the six digits it shows.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class PasswordRecheckForm(forms.Form):
    """The account's password again, before a change a stolen session must not make."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Asked again so that someone who found this browser signed in cannot take "
        "over your second factor.",
        error_messages={"required": "Type your password to confirm it is you."},
    )


RECHECK_REFUSED_TEXT = (
    "That is not your password. Wrong passwords here count as failed sign-ins: after too "
    "many, this session is signed out."
)


def encodable_address(address: str) -> str:
    # Django accepts an international domain; mail goes to it in its xn-- form, so that
    # form must exist (a label that is too long once encoded has none).
    if not address:
        return address
    try:
        punycode(address.rpartition("@")[2])
    except UnicodeError:
        raise forms.ValidationError(
            "This domain cannot be written the way e-mail carries it (in its xn-- form, "
            "one of its parts is longer than 63 characters).",
            code="domain_not_encodable",
        ) from None
    return address


class UserDetailsForm(forms.ModelForm):
    """A user's name and e-mail, by themselves (Your account) or by an administrator (Users).
    A new e-mail address decides where password resets go: the person changing it types
    their own password, so that a session left open cannot redirect them."""

    password = forms.CharField(
        label="Your password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Needed only to change the e-mail address: password resets go there.",
    )

    class Meta:
        model = get_user_model()
        fields = ["first_name", "last_name", "email"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "email"
        ].help_text = (
            "Where password resets, invitations, secret-expiry reminders and health alerts go."
        )

    def clean_email(self) -> str:
        return encodable_address(self.cleaned_data["email"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "email" in self.changed_data and not cleaned.get("password"):
            self.add_error("password", "Type your password to change the e-mail address.")
        return cleaned


class UserAddForm(forms.ModelForm):
    administrator = forms.BooleanField(
        label="Administrator (may manage SMTP, users and activity)",
        required=False,
    )
    password1 = forms.CharField(
        label="Initial password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to e-mail them a link to choose their own password (sent "
        "through the outbox, valid for an hour; the Users page can send it again).",
    )
    password2 = forms.CharField(
        label="Initial password again",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = get_user_model()
        fields = ["username", "email", "first_name", "last_name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields[
            "email"
        ].help_text = "For the invitation, password resets and the secret-expiry reminders."

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        taken = get_user_model().objects.filter(username__iexact=username).exists()
        if taken:
            raise forms.ValidationError("A user with this name already exists.")
        return username

    def clean_email(self) -> str:
        return encodable_address(self.cleaned_data["email"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("password1") or "", cleaned.get("password2") or ""
        if first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            candidate = get_user_model()(
                username=cleaned.get("username", ""),
                email=cleaned.get("email", ""),
                first_name=cleaned.get("first_name", ""),
                last_name=cleaned.get("last_name", ""),
            )
            try:
                validate_password(first, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned
