"""Administration > Activity: what is recorded, the filters, the pages, and no secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from activity.models import Entry, Kind
from activity.service import activity_record
from smtp_settings import outbox
from smtp_settings.models import Delivery, DeliveryState

from .conftest import CLIENT_SECRET

pytestmark = pytest.mark.django_db


def rows(page: str) -> list[str]:
    if 'id="activity-table"' not in page:
        return []
    body = page.split('id="activity-table"')[1].split("<tbody>")[1].split("</tbody>")[0]
    return [row for row in body.split("<tr")[1:]]


def test_the_page_shows_what_administrators_did_and_no_secret(
    admin_client: Client,
    admin_user: User,
    plain_user: User,
    oauth_form_data: dict[str, Any],
    settings: Any,
) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    # Sign-ins, good and bad, through the sign-in page.
    Client().post(reverse("login"), {"username": "root-admin", "password": "correct horse 42"})
    Client().post(reverse("login"), {"username": "root-admin", "password": "wrong"})
    Client().post(reverse("login"), {"username": "Xq8-typed-in-the-wrong-box", "password": "x"})
    # A message held while nothing is saved, released by the save.
    mail.send_mail("Hello", "Body", "a@contoso.example", ["it@contoso.example"])
    outbox.outbox_deliver_due()
    assert Delivery.objects.get(email__subject="Hello").state == DeliveryState.HELD
    assert admin_client.post(reverse("smtp_settings:manage"), oauth_form_data).status_code == 302
    validate = admin_client.post(
        reverse("smtp_settings:validate"), oauth_form_data, HTTP_ACCEPT="application/json"
    )
    assert validate.status_code == 202
    email_id = Delivery.objects.get(email__subject="Hello").pk
    admin_client.post(
        reverse("smtp_settings:outbox_action", args=[email_id]), {"action": "discard"}
    )
    Delivery.objects.filter(pk=email_id).update(state=DeliveryState.FAILED)
    admin_client.post(reverse("smtp_settings:outbox_action", args=[email_id]), {"action": "retry"})
    admin_client.post(reverse("accounts:user_action", args=[plain_user.pk]), {"action": "grant"})

    page = admin_client.get(reverse("activity")).content.decode()
    kinds = set(Entry.objects.values_list("kind", flat=True))
    assert {
        Kind.SIGNIN_SUCCEEDED,
        Kind.SIGNIN_FAILED,
        Kind.OUTBOX_HELD,
        Kind.OUTBOX_RELEASED,
        Kind.SETTINGS_SAVED,
        Kind.VALIDATION_STARTED,
        Kind.OUTBOX_DISCARDED,
        Kind.OUTBOX_RETRIED,
        Kind.ROLE_GRANTED,
    } <= kinds
    for label in (
        "Signed in",
        "Sign-in failed",
        "SMTP settings saved",
        "Validation started",
        "Outbox held",
        "Outbox released",
        "Message discarded",
        "Message retried",
        "Administrator role granted",
    ):
        assert f'<td data-label="What">{label}</td>' in page, label
    saved = Entry.objects.get(kind=Kind.SETTINGS_SAVED)
    assert saved.actor == admin_user
    assert "Client Secret replaced" in saved.summary and "smtp.office365.com" in saved.summary
    assert "Failed sign-in with an unknown user name." in page
    assert "Xq8-typed-in-the-wrong-box" not in page  # maybe a password: not kept
    # Nothing secret anywhere: not on the page, not in the rows.
    assert CLIENT_SECRET not in page
    assert not Entry.objects.filter(summary__contains=CLIENT_SECRET).exists()
    assert not Entry.objects.filter(summary__contains="correct horse").exists()


def test_filters_by_person_and_by_dates(
    admin_client: Client, admin_user: User, delegated_admin: User
) -> None:
    Entry.objects.all().delete()  # the admin client's own sign-in
    day = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    for offset, who in [(0, admin_user), (1, delegated_admin), (2, admin_user), (5, None)]:
        entry = activity_record(
            kind=Kind.USER_ADDED, summary=f"day {offset} by {who or 'system'}", actor=who
        )
        Entry.objects.filter(pk=entry.pk).update(at=day + timedelta(days=offset))

    mine = admin_client.get(reverse("activity"), {"person": admin_user.pk}).content.decode()
    assert [("day 0" in r, "day 2" in r) for r in rows(mine)] == [(False, True), (True, False)]
    both_days = admin_client.get(
        reverse("activity"), {"day_from": "2026-03-11", "day_to": "2026-03-12"}
    ).content.decode()
    assert len(rows(both_days)) == 2
    assert "day 1 by mail-admin" in both_days and "day 2 by root-admin" in both_days
    combined = admin_client.get(
        reverse("activity"), {"person": delegated_admin.pk, "day_from": "2026-03-12"}
    ).content.decode()
    assert rows(combined) == [] and 'id="activity-empty"' in combined
    # The person filter offers the people in the trail.
    assert f'<option value="{delegated_admin.pk}">mail-admin</option>' in mine


def test_a_reversed_date_range_is_explained_and_filters_nothing(admin_client: Client) -> None:
    page = admin_client.get(
        reverse("activity"), {"day_from": "2026-03-12", "day_to": "2026-03-01"}
    ).content.decode()
    assert "The end date is before the start date." in page
    assert len(rows(page)) == Entry.objects.count()


@pytest.mark.parametrize(("name", "day"), [("day_to", "9999-12-31"), ("day_from", "0001-01-01")])
def test_a_day_at_the_calendars_end_is_a_field_error_not_a_server_error(
    admin_client: Client, name: str, day: str
) -> None:
    response = admin_client.get(reverse("activity"), {name: day})
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="id_{name}_error"' in page and "Choose a day between" in page
    assert len(rows(page)) == Entry.objects.count()


def test_an_outbox_action_on_a_message_that_does_not_exist_is_not_found(
    admin_client: Client,
) -> None:
    for email_id in (12345, 99999999999999999999999):
        for action in ("retry", "discard"):
            url = reverse("smtp_settings:outbox_action", args=[email_id])
            assert admin_client.post(url, {"action": action}).status_code == 404


def test_the_page_is_paginated_and_keeps_its_filters(
    admin_client: Client, admin_user: User
) -> None:
    Entry.objects.all().delete()
    for number in range(120):
        activity_record(kind=Kind.SETTINGS_SAVED, summary=f"save {number}", actor=admin_user)
    query = {"person": admin_user.pk, "kind": Kind.SETTINGS_SAVED}
    first = admin_client.get(reverse("activity"), query).content.decode()
    assert len(rows(first)) == 50 and "save 119" in first and "Newest</a>" not in first
    cursor = Entry.objects.get(summary="save 70").pk
    older = f'href="?person={admin_user.pk}&amp;kind=settings.saved&amp;before={cursor}"'
    assert older in first
    second = admin_client.get(reverse("activity"), {**query, "before": cursor}).content.decode()
    assert len(rows(second)) == 50 and "save 69<" in second and "save 70<" not in second
    assert 'rel="first">Newest</a>' in second
    cursor = Entry.objects.get(summary="save 20").pk
    last = admin_client.get(reverse("activity"), {**query, "before": cursor}).content.decode()
    assert len(rows(last)) == 20 and "save 0<" in last and 'rel="next"' not in last


def test_the_page_reads_few_queries(
    admin_client: Client, admin_user: User, django_assert_max_num_queries: Any
) -> None:
    for number in range(60):
        activity_record(kind=Kind.SETTINGS_SAVED, summary=f"save {number}", actor=admin_user)
    with django_assert_max_num_queries(15):
        admin_client.get(reverse("activity"))
