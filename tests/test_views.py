"""The Administration pages as a browser without JavaScript sees them."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from smtp_settings.models import SettingsChange, SmtpSettings

from .conftest import CLIENT_SECRET

pytestmark = pytest.mark.django_db

# Every Administration page without arguments; pages with arguments are in test_hardening.
ADMIN_ROUTES = [
    "administration",
    "smtp_settings:manage",
    "smtp_settings:outbox",
    "accounts:users",
    "accounts:user_add",
    "activity",
]


@pytest.mark.parametrize("route", [*ADMIN_ROUTES, "home"])
def test_anonymous_users_are_sent_to_the_login_page(client: Client, route: str) -> None:
    response = client.get(reverse(route))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_users_without_the_permission_get_403(client: Client, plain_user: User, route: str) -> None:
    client.force_login(plain_user)
    response = client.get(reverse(route))
    assert response.status_code == 403
    assert "Only administrators" in response.content.decode()


def test_users_without_the_permission_cannot_post(
    client: Client, plain_user: User, oauth_form_data: dict[str, Any]
) -> None:
    client.force_login(plain_user)
    response = client.post(reverse("smtp_settings:manage"), oauth_form_data)
    assert response.status_code == 403
    assert not SmtpSettings.objects.exists()


def test_holders_of_the_change_permission_may_administer(
    client: Client, delegated_admin: User
) -> None:
    client.force_login(delegated_admin)
    assert client.get(reverse("smtp_settings:manage")).status_code == 200


def test_login_page_signs_in_and_returns_to_the_page_asked_for(
    client: Client, admin_user: User
) -> None:
    target = reverse("smtp_settings:manage")
    response = client.post(
        reverse("login") + f"?next={target}",
        {"username": "root-admin", "password": "correct horse 42", "next": target},
    )
    assert response.status_code == 302
    assert response["Location"] == target


def test_gear_icon_leads_to_administration_and_manage_smtp(admin_client: Client) -> None:
    home = admin_client.get(reverse("home")).content.decode()
    assert 'aria-label="Administration"' in home
    assert f'href="{reverse("administration")}"' in home
    index = admin_client.get(reverse("administration")).content.decode()
    assert "Manage SMTP" in index and reverse("smtp_settings:manage") in index


def test_people_without_the_permission_see_no_gear_icon(client: Client, plain_user: User) -> None:
    client.force_login(plain_user)
    home = client.get(reverse("home")).content.decode()
    assert 'aria-label="Administration"' not in home
    assert f'href="{reverse("administration")}"' not in home
    assert client.get(reverse("administration")).status_code == 403  # where it would lead


def test_post_without_csrf_token_is_rejected(
    admin_user: User, oauth_form_data: dict[str, Any]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(reverse("smtp_settings:manage"), oauth_form_data)
    assert response.status_code == 403
    assert not SmtpSettings.objects.exists()


def test_new_configuration_starts_with_the_documented_defaults(admin_client: Client) -> None:
    form = admin_client.get(reverse("smtp_settings:manage")).context["form"]
    assert form["port"].value() == 587
    assert form["use_ssl_tls"].value() is True
    assert form["auth_type"].value() == "oauth2"
    assert form["scopes"].value() == "https://outlook.office365.com/.default"


def test_page_shows_every_documented_label(admin_client: Client) -> None:
    html = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    for label in (
        "SMTP Server",
        "Sender Email",
        "Port",
        "Authentication Type",
        "Client ID",
        "Client Secret",
        "Secret Expiration Alert",
        "Secret Expiration Date",
        "Token Endpoint",
        "Scopes",
        "Use SSL/TLS",
        "Use sender email",
    ):
        assert f">{label}</label>" in html


def test_save_stores_the_settings_and_confirms(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    response = admin_client.post(reverse("smtp_settings:manage"), oauth_form_data, follow=True)
    assert "SMTP settings saved." in response.content.decode()
    stored = SmtpSettings.load()
    assert stored.smtp_server == "smtp.office365.com"
    assert stored.client_secret == CLIENT_SECRET
    assert stored.client_secret_replaced_at is not None


def test_page_never_contains_the_stored_secret(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    admin_client.post(reverse("smtp_settings:manage"), oauth_form_data)
    html = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert CLIENT_SECRET not in html
    assert "A client secret is stored" in html
    # Nor is it echoed back after a failed submission.
    failed = admin_client.post(
        reverse("smtp_settings:manage"), {**oauth_form_data, "port": "0"}
    ).content.decode()
    assert CLIENT_SECRET not in failed


def test_blank_secret_keeps_the_stored_one(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    admin_client.post(reverse("smtp_settings:manage"), oauth_form_data)
    admin_client.post(
        reverse("smtp_settings:manage"),
        {**oauth_form_data, "client_secret": "", "sender_email": "other@contoso.example"},
    )
    stored = SmtpSettings.load()
    assert stored.sender_email == "other@contoso.example"
    assert stored.client_secret == CLIENT_SECRET


def test_new_secret_replaces_the_stored_one(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    admin_client.post(reverse("smtp_settings:manage"), oauth_form_data)
    admin_client.post(
        reverse("smtp_settings:manage"), {**oauth_form_data, "client_secret": "new-value~123"}
    )
    assert SmtpSettings.load().client_secret == "new-value~123"


def test_a_changed_token_endpoint_asks_for_the_secret_without_saying_it_is_kept(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    admin_client.post(reverse("smtp_settings:manage"), oauth_form_data)
    other = (
        "https://login.microsoftonline.com/2f4a9c1e-0000-4000-8000-00000000beef/oauth2/v2.0/token"
    )
    html = admin_client.post(
        reverse("smtp_settings:manage"),
        {**oauth_form_data, "client_secret": "", "token_endpoint": other},
    ).content.decode()
    assert "Enter the client secret again: Token Endpoint changed" in html
    assert "Leave blank to keep it" not in html and "A client secret is stored" not in html
    assert SmtpSettings.load().client_secret == CLIENT_SECRET


def test_a_tenant_id_other_than_the_token_endpoints_is_pointed_out(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    other = "2f4a9c1e-0000-4000-8000-00000000beef"
    html = admin_client.post(
        reverse("smtp_settings:manage"), {**oauth_form_data, "tenant_id": other}
    ).content.decode()
    endpoint_tenant = oauth_form_data["token_endpoint"].split("/")[3]
    assert (
        f'id="id_tenant_id_error" role="alert">The Token Endpoint names tenant {endpoint_tenant}, '
        f"not {other}" in html
    )
    assert not SmtpSettings.load().is_stored
    same = {**oauth_form_data, "tenant_id": endpoint_tenant.upper()}
    admin_client.post(reverse("smtp_settings:manage"), same)
    assert SmtpSettings.load().is_stored


def test_invalid_form_changes_nothing_and_shows_the_message_beside_the_field(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    admin_client.post(reverse("smtp_settings:manage"), oauth_form_data)
    before = SettingsChange.objects.count()
    response = admin_client.post(
        reverse("smtp_settings:manage"),
        {**oauth_form_data, "smtp_server": "smtp://bad", "sender_email": "x@contoso.example"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_smtp_server_error"' in html and "without a scheme" in html
    assert SmtpSettings.load().sender_email == "notifications@contoso.example"
    assert SettingsChange.objects.count() == before


def test_history_records_who_when_and_what_without_secret_values(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    admin_client.post(reverse("smtp_settings:manage"), oauth_form_data)
    admin_client.post(
        reverse("smtp_settings:manage"),
        {**oauth_form_data, "port": "25", "client_secret": "rotated-secret~9"},
    )
    latest = SettingsChange.objects.first()
    assert latest.changed_by.username == "root-admin"
    by_field = {entry["field"]: entry for entry in latest.changes}
    assert by_field["port"]["old"] == "587" and by_field["port"]["new"] == "25"
    assert by_field["client_secret"]["new"] == "replaced"
    assert "rotated-secret~9" not in str(latest.changes)
    assert CLIENT_SECRET not in str(SettingsChange.objects.last().changes)
    html = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert "Recent changes" in html and "587 → 25" in html and "replaced" in html
    assert "rotated-secret~9" not in html


def test_saving_a_past_expiration_date_shows_an_expired_warning(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    response = admin_client.post(
        reverse("smtp_settings:manage"),
        {**oauth_form_data, "secret_expiration_date": "2020-01-31"},
        follow=True,
    )
    html = response.content.decode()
    assert "SMTP settings saved." in html
    assert html.count("expired on 2020-01-31") == 1  # the banner, not also a message


def test_basic_password_is_write_only_too(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    data = {**oauth_form_data, "auth_type": "basic", "username": "relay", "password": "b4sic-pw!"}
    admin_client.post(reverse("smtp_settings:manage"), data)
    html = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert "b4sic-pw!" not in html and "A password is stored" in html
    admin_client.post(reverse("smtp_settings:manage"), {**data, "password": ""})
    assert SmtpSettings.load().password == "b4sic-pw!"


@pytest.mark.parametrize(
    "url",
    [
        "/administration/",
        "/administration/smtp/",
        "/administration/smtp/outbox/",
        "/administration/smtp/setup/",
        "/administration/users/",
        "/administration/activity/",
    ],
)
def test_an_administration_page_costs_at_most_five_queries(
    url: str, sandbox: Any, admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    """The status block and the banners come with the settings row in one query, whatever
    the history holds; the session comes from the cache once it is there."""
    from django.core import mail

    from smtp_settings import validation

    from .test_sending import save

    save(sandbox.form_values())
    mail.send_mail("Sent", "Body", "notifications@sandbox.example", ["it@x.example"])
    started = admin_client.post(
        "/administration/smtp/validate/", sandbox.form_values(), HTTP_ACCEPT="application/json"
    ).json()
    validation.validation_run_execute(run_id=started["run"])
    assert admin_client.get(url).status_code == 200  # the session is now in the cache
    with django_assert_max_num_queries(5):
        assert admin_client.get(url).status_code == 200


def test_the_status_block_tells_the_saved_settings_validation_from_trials(
    sandbox: Any, admin_client: Client
) -> None:
    from smtp_settings import validation

    from .test_sending import save

    def validate(values: dict[str, str]) -> str:
        started = admin_client.post(
            "/administration/smtp/validate/", values, HTTP_ACCEPT="application/json"
        ).json()
        validation.validation_run_execute(run_id=started["run"])
        return str(started["run"])

    def status() -> str:
        return admin_client.get(reverse("administration")).content.decode()

    values = sandbox.form_values()
    # Validate, then Save the same values: that run is the saved settings' validation.
    first = validate(values)
    assert 'id="status-trial"' in status()
    save(values)
    page = status()
    assert first in page.split('id="status-validation"')[1].split("</dd>")[0]
    assert 'id="status-trial"' not in page
    # A trial of other values (another secret) is shown apart, and the saved one stays.
    trial = validate({**values, "client_secret": "another~Secret.Value"})
    page = status()
    assert first in page.split('id="status-validation"')[1].split("</dd>")[0]
    assert trial in page.split('id="status-trial"')[1].split("</dd>")[0]
    assert "not what is saved" in page
    # Saved again with a change: no validation of these yet.
    save({**values, "use_sender_email": ""})
    changed = status().split('id="status-validation"')[1].split("</dd>")[0]
    assert "Not run on the saved settings yet" in changed


def test_a_secret_date_past_entras_24_months_is_refused_next_to_the_field(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    far = (timezone.localdate() + timedelta(days=800)).isoformat()
    response = admin_client.post(
        reverse("smtp_settings:manage"), {**oauth_form_data, "secret_expiration_date": far}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "at most 24 months" in page
    assert "Enter the date the secret expires" not in page  # one message beside the field
    assert not SmtpSettings.objects.exists()


def test_a_worker_seen_seconds_ago_was_seen_just_now(admin_client: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from smtp_settings.models import WorkerHeartbeat

    seen = WorkerHeartbeat.objects.create(
        worker="w1@host", role=WorkerHeartbeat.WORKER, seen_at=timezone.now()
    )
    page = admin_client.get(reverse("administration")).content.decode()
    assert "just now</time> (w1@host)" in page and "0 minutes" not in page
    WorkerHeartbeat.objects.filter(pk=seen.pk).update(seen_at=timezone.now() - timedelta(minutes=5))
    page = admin_client.get(reverse("administration")).content.decode()
    assert "5\xa0minutes ago</time>" in page


def test_a_new_secret_saved_with_the_old_date_asks_for_its_own(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    admin_client.post(reverse("smtp_settings:manage"), oauth_form_data)
    replaced = admin_client.post(
        reverse("smtp_settings:manage"),
        {**oauth_form_data, "client_secret": "the-new~Secret.Value-7"},
        follow=True,
    ).content.decode()
    assert "SMTP settings saved." in replaced
    assert "still says" in replaced and "Enter the new secret" in replaced
    # Saving with the new secret's own date says nothing of the kind.
    from datetime import timedelta

    from django.utils import timezone

    later = (timezone.localdate() + timedelta(days=700)).isoformat()
    dated = admin_client.post(
        reverse("smtp_settings:manage"),
        {
            **oauth_form_data,
            "client_secret": "newer~Secret.Value-8",
            "secret_expiration_date": later,
        },
        follow=True,
    ).content.decode()
    assert "still says" not in dated
