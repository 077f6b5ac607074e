"""The Activity page's filters; an invalid value is shown as an error and filters nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from activity.models import Kind
from activity.service import activity_people

# A day is searched from its midnight to the next one, in the console's time zone: the
# first and last days of the calendar have no day before or after to compute.
FIRST_DAY = date(1, 1, 2)
LAST_DAY = date(9999, 12, 30)


def validate_day(value: date) -> None:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValidationError(
            f"Choose a day between {FIRST_DAY:%Y-%m-%d} and {LAST_DAY:%Y-%m-%d}.",
            code="day_range",
        )


class ActivityFilterForm(forms.Form):
    person = forms.TypedChoiceField(label="Person", required=False, coerce=int, empty_value=None)
    kind = forms.ChoiceField(
        label="What", required=False, choices=[("", "Everything"), *Kind.choices]
    )
    day_from = forms.DateField(
        label="From",
        required=False,
        validators=[validate_day],
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    day_to = forms.DateField(
        label="To",
        required=False,
        validators=[validate_day],
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = [
            ("", "Everyone"),
            *((user.pk, user.get_username()) for user in activity_people()),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("day_from"), cleaned.get("day_to")
        if start and end and end < start:
            self.add_error("day_to", "The end date is before the start date.")
        return cleaned
