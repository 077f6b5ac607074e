"""Set up Microsoft 365: each step's check against the sandbox's Entra and Exchange
stand-ins, passing and failing with the step named; the held secret; the hand-over to
Manage SMTP; the page without JavaScript.

Checks run in this process (the worker's code, without a broker), as in
test_validate_diagnosis.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from smtp_settings import assistant, validation
from smtp_settings.models import SetupAssistant, SetupSecret, SmtpSettings, ValidationRun

from .sandbox.world import (
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET_EXPIRES,
    SENDER,
    TENANT_DOMAIN,
    TENANT_ID,
)

pytestmark = pytest.mark.django_db

SESSION = "a-session-key"


@pytest.fixture
def setup(sandbox: Any, admin_user: Any) -> Any:
    """The assistant filled in for the sandbox's tenant, with the secret held."""
    assistant.setup_assistant_save(
        user=admin_user,
        values={
            "cloud": f"host:{sandbox.authority_host}",
            "tenant": TENANT_ID,
            "client_id": CLIENT_ID,
            "secret_expiration_date": None,
            "sender_email": SENDER,
            "use_sender_email": True,
            "mailboxes": "",
            "smtp_server": "127.0.0.1",
            "port": sandbox.exchange.port,
        },
    )
    hold(admin_user, sandbox, CLIENT_SECRET)
    return admin_user


def hold(user: Any, sandbox: Any, secret: str) -> None:
    assistant.setup_secret_hold(
        user=user,
        session_key=SESSION,
        secret=secret,
        login_host=sandbox.authority_host,
        client_id=CLIENT_ID,
    )


def check(user: Any, name: str) -> dict[str, Any]:
    run = assistant.setup_check_start(user=user, session_key=SESSION, check=name)
    validation.validation_run_execute(run_id=str(run.id))
    run = ValidationRun.objects.get(pk=run.pk)
    result = validation.validation_run_as_dict(run=run)
    result["by_step"] = {step["key"]: step for step in result["steps"]}
    result["failed_step"] = assistant.setup_failed_step(run=run)
    return result


# -- step 1: the tenant -----------------------------------------------------------------


def test_tenant_check_passes_and_fills_the_token_endpoint(setup: Any, sandbox: Any) -> None:
    result = check(setup, "tenant")
    assert result["status"] == "passed" and result["failed_step"] == ""
    assert [step["key"] for step in result["steps"]] == ["tenant"]
    state = assistant.setup_progress(user=setup, session_key=SESSION)
    assert state.done[1]
    assert state.tenant_id == TENANT_ID
    assert state.token_endpoint == sandbox.entra.token_endpoint(TENANT_ID)
    assert sandbox.entra.token_requests == 0, "the tenant check sends no secret"
    # The sandbox is not Microsoft's cloud, whatever its discovery answers.
    facts = dict(result["by_step"]["tenant"]["facts"])
    assert "Cloud" not in facts
    assert facts["Sign-in host"] == f"127.0.0.1:{sandbox.entra.port} (allowed by the operator)"


def test_a_tenant_domain_is_resolved_to_its_id(setup: Any, sandbox: Any) -> None:
    assistant.setup_assistant_save(user=setup, values={"tenant": TENANT_DOMAIN})
    result = check(setup, "tenant")
    assert result["status"] == "passed"
    facts = dict(result["by_step"]["tenant"]["facts"])
    assert facts["Directory (tenant) ID"] == TENANT_ID
    state = assistant.setup_progress(user=setup, session_key=SESSION)
    assert state.tenant_id == TENANT_ID
    assert state.token_endpoint == sandbox.entra.token_endpoint(TENANT_ID)
    assert TENANT_ID in state.script()


def test_unknown_tenant_fails_at_step_one(setup: Any) -> None:
    assistant.setup_assistant_save(
        user=setup, values={"tenant": "9d1c0b7a-0000-4000-8000-000000000999"}
    )
    result = check(setup, "tenant")
    step = result["by_step"]["tenant"]
    assert result["status"] == "failed" and step["status"] == "failed"
    assert step["diagnosis"] == "aadsts_unknown_tenant"
    assert "AADSTS90002" in step["server_answer"]
    assert result["failed_step"] == "1: Register the app"
    assert not assistant.setup_progress(user=setup, session_key=SESSION).done[1]


# -- steps 2 to 4: the token ------------------------------------------------------------


def test_token_check_passes_and_reads_the_service_principal(setup: Any, sandbox: Any) -> None:
    result = check(setup, "token")
    assert result["status"] == "passed"
    state = assistant.setup_progress(user=setup, session_key=SESSION)
    assert state.done[2] and state.done[3] and state.done[4]
    assert state.sp_object_id == sandbox.app.service_principal_id
    assert f"'{sandbox.app.service_principal_id}'" in state.script()


def test_consent_missing_fails_at_steps_two_and_three(setup: Any, sandbox: Any) -> None:
    sandbox.app.roles = {}
    result = check(setup, "token")
    step = result["by_step"]["token_contents"]
    assert step["status"] == "failed" and step["diagnosis"] == "token_without_role"
    assert "Grant admin consent" in step["fix"]
    assert result["failed_step"] == "2 and 3: Add SMTP.SendAsApp and grant admin consent"
    state = assistant.setup_progress(user=setup, session_key=SESSION)
    assert state.done[4] and not state.done[3]


def test_graph_mail_send_chosen_by_mistake_is_named(setup: Any, sandbox: Any) -> None:
    sandbox.app.roles = {"https://graph.microsoft.com": ["Mail.Send"]}
    step = check(setup, "token")["by_step"]["token_contents"]
    assert step["diagnosis"] == "token_graph_mail_send"
    assert "Mail.Send" in step["cause"]


@pytest.mark.parametrize(
    ("secret", "row"),
    [
        ("not-the-right~value-at-all", "aadsts_wrong_secret"),
        ("secret_id", "aadsts_secret_id"),
    ],
)
def test_a_wrong_secret_fails_at_step_four(setup: Any, sandbox: Any, secret: str, row: str) -> None:
    if secret == "secret_id":
        secret = sandbox.app.secret_ids[CLIENT_SECRET]
    hold(setup, sandbox, secret)
    result = check(setup, "token")
    step = result["by_step"]["token"]
    assert step["status"] == "failed" and step["diagnosis"] == row
    assert "AADSTS7000215" in step["server_answer"]
    assert result["by_step"]["token_contents"]["status"] == "skipped"
    assert result["failed_step"] == "4: Create a client secret"


def test_an_unknown_client_id_is_blamed_on_step_one(setup: Any) -> None:
    assistant.setup_assistant_save(
        user=setup, values={"client_id": "0e9f7a3c-1111-4222-8333-944455556666"}
    )
    SetupSecret.objects.update(client_id="0e9f7a3c-1111-4222-8333-944455556666")
    check(setup, "tenant")  # the tenant exists: step 1 looks done...
    result = check(setup, "token")
    assert result["by_step"]["token"]["diagnosis"] == "aadsts_unknown_app"
    assert result["failed_step"] == "1: Register the app"
    # ...until the token request shows the client ID is no app of it.
    assert not assistant.setup_progress(user=setup, session_key=SESSION).done[1]


def test_an_expired_secret_fails_at_step_four(setup: Any, sandbox: Any) -> None:
    sandbox.app.secrets = dict.fromkeys(sandbox.app.secrets, True)
    result = check(setup, "token")
    assert result["by_step"]["token"]["diagnosis"] == "aadsts_secret_expired"
    assert result["failed_step"] == "4: Create a client secret"


def test_the_candidate_secret_is_erased_after_a_check(setup: Any) -> None:
    check(setup, "token")
    run = ValidationRun.objects.get()
    assert run.candidate_secret is None
    assert CLIENT_SECRET not in str(run.candidate) and CLIENT_SECRET not in str(run.outputs)


def test_checks_that_need_the_secret_wait_for_it(setup: Any) -> None:
    assistant.setup_secret_erase(user=setup)
    with pytest.raises(assistant.SetupNotReady, match="step 4"):
        assistant.setup_check_start(user=setup, session_key=SESSION, check="token")
    assert not ValidationRun.objects.exists()


def test_checks_that_sign_in_share_validates_rate_limits(setup: Any, settings: Any) -> None:
    settings.SMTP_VALIDATION_MAX_RUNS = 1
    # A tenant check reads a public document and signs in to nothing: not counted.
    check(setup, "tenant")
    check(setup, "tenant")
    check(setup, "token")
    with pytest.raises(validation.ValidationNotStarted, match="signs in to Microsoft"):
        assistant.setup_check_start(user=setup, session_key=SESSION, check="token")


# -- step 5: Exchange -------------------------------------------------------------------


def test_mailbox_check_passes(setup: Any) -> None:
    result = check(setup, "mailbox")
    assert result["status"] == "passed"
    assert result["by_step"]["authenticate"]["status"] == "passed"
    assert result["by_step"]["sender"]["status"] == "passed"
    assert assistant.setup_progress(user=setup, session_key=SESSION).done[5]


def test_service_principal_not_registered_fails_at_step_five(setup: Any, sandbox: Any) -> None:
    sandbox.tenant.exchange_service_principals.clear()
    result = check(setup, "mailbox")
    step = result["by_step"]["authenticate"]
    assert step["status"] == "failed" and step["diagnosis"] == "auth_mailbox_permission"
    assert any("New-ServicePrincipal" in command for command in step["commands"])
    assert any(sandbox.app.service_principal_id in command for command in step["commands"])
    assert result["failed_step"].startswith("5: Register the service principal")


def test_no_mailbox_permission_fails_at_step_five(setup: Any, sandbox: Any) -> None:
    sandbox.mailbox.full_access.clear()
    result = check(setup, "mailbox")
    step = result["by_step"]["authenticate"]
    assert step["status"] == "failed" and "535 5.7.3" in step["server_answer"]
    assert any("Add-MailboxPermission" in command for command in step["commands"])
    assert result["failed_step"].startswith("5: Register the service principal")


def test_with_use_sender_email_off_every_listed_mailbox_is_checked(
    setup: Any, sandbox: Any
) -> None:
    sandbox.tenant.add_mailbox("sales@sandbox.example", full_access_for=sandbox.app)
    sandbox.tenant.add_mailbox("support@sandbox.example")  # no FullAccess for the app
    assistant.setup_assistant_save(
        user=setup,
        values={
            "use_sender_email": False,
            "mailboxes": "sales@sandbox.example, support@sandbox.example",
        },
    )
    state = assistant.setup_progress(user=setup, session_key=SESSION)
    assert state.mailboxes == [SENDER, "sales@sandbox.example", "support@sandbox.example"]
    assert "    'support@sandbox.example'" in state.script()
    result = check(setup, "mailbox")
    assert result["by_step"]["sender"]["status"] == "passed"
    assert result["by_step"]["mailbox_0"]["status"] == "passed"
    failed = result["by_step"]["mailbox_1"]
    assert failed["name"] == "Mailbox support@sandbox.example"
    assert failed["status"] == "failed" and failed["diagnosis"] == "auth_mailbox_permission"
    assert any("'support@sandbox.example'" in command for command in failed["commands"])
    assert result["failed_step"].startswith("5: Register the service principal")


def test_a_mailbox_check_of_other_mailboxes_is_out_of_date(setup: Any, sandbox: Any) -> None:
    assert check(setup, "mailbox")["status"] == "passed"
    assert assistant.setup_progress(user=setup, session_key=SESSION).done[5]
    assistant.setup_assistant_save(
        user=setup, values={"use_sender_email": False, "mailboxes": "nobody@sandbox.example"}
    )
    state = assistant.setup_progress(user=setup, session_key=SESSION)
    assert state.runs["mailbox"] is None and not state.done[5]


def test_a_secret_refused_later_undoes_the_mailbox_steps_pass(setup: Any, sandbox: Any) -> None:
    assert check(setup, "mailbox")["status"] == "passed"
    hold(setup, sandbox, "not the secret")
    assert check(setup, "token")["failed_step"] == "4: Create a client secret"
    done = assistant.setup_progress(user=setup, session_key=SESSION).done
    assert not done[4] and not done[5]


def test_a_check_of_other_values_is_out_of_date(setup: Any) -> None:
    check(setup, "tenant")
    assistant.setup_assistant_save(user=setup, values={"tenant": TENANT_DOMAIN})
    state = assistant.setup_progress(user=setup, session_key=SESSION)
    assert state.runs["tenant"] is None and not state.done[1]


# -- the held secret --------------------------------------------------------------------


def test_progress_keeps_no_secret_and_the_held_one_is_ciphertext(setup: Any) -> None:
    names = {field.name for field in SetupAssistant._meta.get_fields()}
    assert not any("secret" in name and name != "secret_expiration_date" for name in names)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM smtp_settings_setupsecret")
        (stored,) = cursor.fetchone()
    assert stored and CLIENT_SECRET not in stored


def test_the_held_secret_belongs_to_its_session_and_runs_out(setup: Any) -> None:
    assert assistant.setup_secret_read(user=setup, session_key=SESSION) is not None
    assert assistant.setup_secret_read(user=setup, session_key="another-session") is None
    SetupSecret.objects.update(expires_at="2000-01-01T00:00:00Z")
    assert assistant.setup_secret_read(user=setup, session_key=SESSION) is None
    assert assistant.setup_secrets_purge() == 1


def test_the_held_secret_never_follows_another_host(setup: Any) -> None:
    held = assistant.setup_secret_read(user=setup, session_key=SESSION)
    assert held is not None
    assert not held.fits(
        token_endpoint=f"https://evil.example/{TENANT_ID}/oauth2/v2.0/token", client_id=CLIENT_ID
    )


# -- the pages ----------------------------------------------------------------------------


@pytest.fixture
def page_client(sandbox: Any, admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _app_post(sandbox: Any, **overrides: str) -> dict[str, str]:
    return {
        "part": "app",
        "action": "save",
        "cloud": f"host:{sandbox.authority_host}",
        "tenant": TENANT_ID,
        "client_id": CLIENT_ID,
        **overrides,
    }


def test_the_page_needs_the_permission(client: Client, plain_user: Any) -> None:
    client.force_login(plain_user)
    assert client.get("/administration/smtp/setup/").status_code == 403


def test_manage_smtp_offers_the_assistant_while_nothing_is_saved(page_client: Client) -> None:
    page = page_client.get("/administration/smtp/").content.decode()
    assert 'id="setup-invite"' in page and "/administration/smtp/setup/" in page


def test_field_errors_sit_next_to_their_fields_and_nothing_is_saved(
    page_client: Client, sandbox: Any
) -> None:
    response = page_client.post(
        "/administration/smtp/setup/", _app_post(sandbox, tenant="<TENANT_ID>", client_id="x")
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_tenant_error"' in page and "placeholder" in page
    assert 'id="id_client_id_error"' in page
    assert not SetupAssistant.objects.exists()


def test_without_javascript_a_check_posts_and_shows_on_the_page(
    page_client: Client, sandbox: Any, admin_user: Any
) -> None:
    response = page_client.post("/administration/smtp/setup/", _app_post(sandbox, action="check"))
    assert response.status_code == 302 and response["Location"].endswith("#step-1")
    run = ValidationRun.objects.get()
    assert run.scope == "tenant"
    page = page_client.get("/administration/smtp/setup/").content.decode()
    assert 'http-equiv="refresh"' in page, "a running check refreshes the page without JS"
    validation.validation_run_execute(run_id=str(run.id))
    page = page_client.get("/administration/smtp/setup/").content.decode()
    assert "Check: Passed" in page and sandbox.entra.token_endpoint(TENANT_ID) in page


def test_the_secret_is_held_never_shown_and_the_whole_way_ends_on_manage_smtp(
    page_client: Client, sandbox: Any, admin_user: Any
) -> None:
    page_client.post("/administration/smtp/setup/", _app_post(sandbox))
    response = page_client.post(
        "/administration/smtp/setup/",
        {
            "part": "secret",
            "action": "save",
            "client_secret": CLIENT_SECRET,
            "secret_expiration_date": SECRET_EXPIRES,
        },
    )
    assert response.status_code == 302
    page_client.post(
        "/administration/smtp/setup/",
        {
            "part": "mailbox",
            "action": "save",
            "sender_email": SENDER,
            "use_sender_email": "on",
            "smtp_server": "127.0.0.1",
            "port": str(sandbox.exchange.port),
        },
    )
    page = page_client.get("/administration/smtp/setup/").content.decode()
    assert CLIENT_SECRET not in page
    assert 'id="secret-held"' in page
    assert "adminconsent?client_id=" + CLIENT_ID in page
    assert "Add-MailboxPermission" in page

    script = page_client.get("/administration/smtp/setup/script.ps1")
    assert script["Content-Disposition"] == 'attachment; filename="sei-exchange-smtp-setup.ps1"'
    assert f"$AppId = '{CLIENT_ID}'" in script.content.decode()

    response = page_client.post("/administration/smtp/setup/use/")
    assert response.status_code == 302
    run = ValidationRun.objects.get(scope="full")
    assert f"run={run.id}" in response["Location"]
    manage = page_client.get(response["Location"].split("#")[0]).content.decode()
    assert CLIENT_SECRET not in manage
    assert manage.count('name="use_setup_secret"') == 1
    assert manage.count("entered in the setup assistant") == 1
    assert 'value="127.0.0.1"' in manage and sandbox.entra.token_endpoint(TENANT_ID) in manage
    assert f'value="{SECRET_EXPIRES}"' in manage
    assert not SmtpSettings.objects.exists(), "nothing is saved before Save"

    validation.validation_run_execute(run_id=str(run.id))
    assert ValidationRun.objects.get(pk=run.pk).status == "passed"

    # Save on Manage SMTP with the secret field blank stores the held secret.
    values = {**sandbox.form_values(), "client_secret": "", "use_setup_secret": "1"}
    saved = page_client.post("/administration/smtp/", values)
    errors = [line for line in saved.content.decode().splitlines() if 'class="error' in line]
    assert saved.status_code == 302, errors
    assert SmtpSettings.load().client_secret == CLIENT_SECRET
    assert not SetupSecret.objects.exists(), "the assistant's copy is gone once saved"


def test_the_held_secret_is_not_used_for_another_token_endpoint(
    page_client: Client, sandbox: Any, admin_user: Any
) -> None:
    page_client.post("/administration/smtp/setup/", _app_post(sandbox))
    page_client.post(
        "/administration/smtp/setup/",
        {"part": "secret", "action": "save", "client_secret": CLIENT_SECRET},
    )
    values = {
        **sandbox.form_values(),
        "client_secret": "",
        "use_setup_secret": "1",
        "token_endpoint": f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/token",
    }
    response = page_client.post("/administration/smtp/", values)
    assert response.status_code == 400
    assert 'id="id_client_secret_error"' in response.content.decode()
    assert not SmtpSettings.objects.exists()


def test_a_fresh_start_begins_from_the_saved_settings(sandbox: Any, admin_user: Any) -> None:
    from smtp_settings import services
    from smtp_settings.forms import SmtpSettingsForm

    form = SmtpSettingsForm(sandbox.form_values(), instance=SmtpSettings.load())
    assert form.is_valid(), form.errors
    services.smtp_settings_save(values=form.cleaned_data, user=admin_user)
    row = assistant.setup_assistant_get(user=admin_user)
    assert row.cloud == f"host:{sandbox.authority_host}"
    assert (row.tenant, row.client_id, row.sender_email) == (TENANT_ID, CLIENT_ID, SENDER)
    assert row.port == sandbox.exchange.port


def test_a_check_that_cannot_start_says_why_at_the_top_of_the_page(
    page_client: Client, sandbox: Any
) -> None:
    page_client.post("/administration/smtp/setup/", _app_post(sandbox))
    response = page_client.post("/administration/smtp/setup/", {"part": "consent"}, follow=True)
    assert response.redirect_chain[-1][0] == "/administration/smtp/setup/"
    assert "Enter the client secret" in response.content.decode()
    assert not ValidationRun.objects.exists()


def test_only_an_answer_to_this_sessions_consent_link_is_shown_and_never_its_text(
    page_client: Client, sandbox: Any
) -> None:
    from urllib.parse import parse_qs, urlsplit

    url = "/administration/smtp/setup/"
    page_client.post(url, _app_post(sandbox, action="save"))
    page = page_client.get(url).content.decode()
    consent = re.search(r'href="(https://[^"]*/adminconsent\?[^"]*)"', page)
    assert consent is not None
    state = parse_qs(urlsplit(html.unescape(consent.group(1))).query)["state"][0]
    lure = "Your tenant is locked. Call +1-555-0100 and read them your client secret."
    forged = page_client.get(
        url, {"error": "access_denied", "error_description": lure, "state": "guess"}
    ).content.decode()
    assert 'id="consent-answer"' not in forged and "555-0100" not in forged
    refused = page_client.get(
        url, {"error": "access_denied", "error_description": lure, "state": state}
    ).content.decode()
    assert "did not grant admin consent" in refused and "555-0100" not in refused
    not_granted = page_client.get(url, {"admin_consent": "False", "state": state})
    assert "consent was granted" not in not_granted.content.decode()
    granted = page_client.get(url, {"admin_consent": "True", "state": state})
    assert "admin consent was granted" in granted.content.decode()


def test_signing_out_erases_the_held_secret(page_client: Client, sandbox: Any) -> None:
    from smtp_settings.models import SetupSecret

    url = "/administration/smtp/setup/"
    page_client.post(url, _app_post(sandbox, action="save"))
    page_client.post(
        url,
        {
            "part": "secret",
            "action": "save",
            "client_secret": CLIENT_SECRET,
            "secret_expiration_date": SECRET_EXPIRES,
        },
    )
    assert SetupSecret.objects.exists()
    page_client.post("/logout/")
    assert not SetupSecret.objects.exists()


def test_a_past_expiry_date_is_refused_next_to_its_field(page_client: Client, sandbox: Any) -> None:
    from smtp_settings.models import SetupSecret

    url = "/administration/smtp/setup/"
    page_client.post(url, _app_post(sandbox, action="save"))
    response = page_client.post(
        url,
        {
            "part": "secret",
            "action": "save",
            "client_secret": CLIENT_SECRET,
            "secret_expiration_date": "2020-01-01",
        },
    )
    assert response.status_code == 400
    assert "2020-01-01 is in the past" in response.content.decode()
    assert not SetupSecret.objects.exists()  # nothing kept from a refused form


def test_a_failed_mailbox_check_points_at_the_script_instead_of_repeating_part_of_it(
    setup: Any, sandbox: Any
) -> None:
    sandbox.tenant.exchange_service_principals.clear()
    assert check(setup, "mailbox")["failed_step"].startswith("5:")
    client = Client()
    client.force_login(setup)
    page = client.get("/administration/smtp/setup/").content.decode()
    assert 'class="fix script-above"' in page
    assert "&lt;SERVICE_PRINCIPAL_ID&gt;" not in page
    assert page.count("New-ServicePrincipal") == page.count('id="ps-script"') == 1


def test_starting_over_forgets_progress_and_the_held_secret_but_not_manage_smtp(
    setup: Any,
) -> None:
    from smtp_settings.models import SetupSecret

    check(setup, "tenant")
    client = Client()
    client.force_login(setup)
    page = client.get("/administration/smtp/setup/").content.decode()
    assert '<details class="help" id="restart-box">' in page  # asked for, not one click away
    client.post("/administration/smtp/setup/restart/")
    state = assistant.setup_progress(user=setup, session_key=SESSION)
    assert not state.row.tenant and state.runs["tenant"] is None
    assert not SetupSecret.objects.exists()


def test_an_empty_manage_smtp_opens_the_assistant_first_once_a_session(
    page_client: Client, settings: Any, sandbox: Any
) -> None:
    settings.SEI_SETUP_ASSISTANT_FIRST = True
    manage = "/administration/smtp/"
    first = page_client.get(manage)
    assert first.status_code == 302 and first.url == "/administration/smtp/setup/?first=1"
    page = page_client.get(first.url).content.decode()
    assert 'id="setup-first"' in page and 'href="/administration/smtp/?form=1"' in page
    # Once offered, the form: on the next visit, or straight away through the link.
    assert 'id="smtp-form"' in page_client.get(manage).content.decode()
    other = Client()
    other.force_login(_user(page_client))
    assert 'id="smtp-form"' in other.get(manage, {"form": "1"}).content.decode()


def test_configured_settings_open_manage_smtp_directly(
    page_client: Client, settings: Any, sandbox: Any
) -> None:
    from .test_sending import save

    settings.SEI_SETUP_ASSISTANT_FIRST = True
    save(sandbox.form_values())
    assert page_client.get("/administration/smtp/").status_code == 200


def _user(client: Client) -> Any:
    from django.contrib.auth import get_user

    return get_user(client)
