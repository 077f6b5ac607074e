from __future__ import annotations

from django import forms

from alerting import notifier


class DestinationForm(forms.Form):
    label = forms.CharField(
        label="Name",
        max_length=80,
        help_text="Shown on this page and in the log, e.g. “Ops channel in Teams”.",
    )
    url = forms.CharField(
        label="Apprise URL",
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The service's Apprise URL: workflows://… for a Teams workflow, slack://…, "
        "discord://…, ntfys://…, pover://… (Pushover), mailto://…, or jsons://host/path for a "
        "webhook. It holds the service's token: stored encrypted, shown masked.",
    )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if any(ord(character) < 32 for character in url):
            raise forms.ValidationError("The URL has a line break or control character in it.")
        try:
            notifier.read(url)
        except notifier.UnusableDestination as error:
            raise forms.ValidationError(str(error)) from error
        return url
