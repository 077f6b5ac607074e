"""What the pages say and record around Microsoft Graph and the fallback connection (issue 20,
found by a clean-clone trial): hidden fields are neither required nor recorded as changed,
runs belong to the connection they validated, fallback saves are labelled, the end of Basic
is said once, and the setup assistant's step 5 for Graph asks and claims only what applies."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from activity.models import Entry
from smtp_settings import assistant, services, validation
from smtp_settings.forms import SmtpSettingsForm
from smtp_settings.models import SettingsChange, SmtpSettings, ValidationRun

from .sandbox.directory import GRAPH_RESOURCE
from .sandbox.world import CLIENT_ID, CLIENT_SECRET, SENDER, TENANT_ID

pytestmark = pytest.mark.django_db

MANAGE = "smtp_settings:manage"
FALLBACK = "smtp_settings:fallback"


def graph_post(sandbox: Any, **changes: Any) -> dict[str, Any]:
    """What the page posts with Graph chosen: its script leaves out the hidden fields."""
    values = {**sandbox.form_values(), "transport": "graph", "graph_host": sandbox.graph.host}
    for name in ("smtp_server", "port", "use_ssl_tls", "scopes"):
        values.pop(name)
    return {**values, **changes}


@pytest.fixture
def graph(sandbox: Any, settings: Any) -> Any:
    settings.SMTP_GRAPH_HOSTS = [sandbox.graph.host]
    return sandbox


def text_of(response: Any) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))


# -- 1. Graph signs in with OAuth 2.0 only; Scopes is not Graph's to choose -----------------


def test_graph_with_basic_is_refused_next_to_the_field_and_changes_nothing(
    graph: Any, admin_client: Client
) -> None:
    admin_client.post(reverse(MANAGE), graph.form_values())
    before = SmtpSettings.load()
    answer = admin_client.post(
        reverse(MANAGE), graph_post(graph, auth_type="basic", username=SENDER, password="pw")
    )
    assert answer.status_code == 400
    page = answer.content.decode()
    error = re.search(r'id="row_auth_type".*?</div>', page, re.S)
    assert error and "Microsoft Graph signs in with OAuth 2.0 only" in error.group(0)
    after = SmtpSettings.load()
    assert (after.version, after.transport, after.auth_type) == (before.version, "smtp", "oauth2")


def test_graph_needs_no_scopes_and_the_page_states_graphs_fixed_scope(
    graph: Any, admin_client: Client
) -> None:
    answer = admin_client.post(reverse(MANAGE), graph_post(graph))
    assert answer.status_code == 302, text_of(answer)[:3000]
    page = admin_client.get(reverse(MANAGE)).content.decode()
    fact = re.search(r'id="row_graph_scope".*?</div>', page, re.S)
    assert fact and 'data-transport="graph"' in fact.group(0)
    assert "https://graph.microsoft.com/.default" in fact.group(0)
    assert "https://graph.microsoft.us/.default" in fact.group(0)
    assert 'id="row_scopes" data-auth="oauth2" data-transport="smtp"' in page


# -- 2. What the administrator did not see is not their change ----------------------------


def test_a_first_save_with_graph_records_only_the_fields_shown(
    graph: Any, admin_client: Client
) -> None:
    assert admin_client.post(reverse(MANAGE), graph_post(graph)).status_code == 302
    recorded = {item["field"] for item in SettingsChange.objects.get().changes}
    assert recorded.isdisjoint({"smtp_server", "port", "use_ssl_tls", "scopes"}), recorded
    assert {"transport", "graph_host", "client_id", "client_secret"} <= recorded
    summary = Entry.objects.filter(summary__startswith="Saved Manage SMTP").get().summary
    assert "Port" not in summary and "Scopes" not in summary and "SSL/TLS" not in summary
    assert "Send through: Microsoft Graph (OAuth 2.0)" in summary


def test_switching_to_graph_keeps_the_smtp_values_and_the_stored_secret(
    graph: Any, admin_client: Client
) -> None:
    admin_client.post(reverse(MANAGE), graph.form_values())
    smtp = SmtpSettings.load()
    answer = admin_client.post(
        reverse(MANAGE), graph_post(graph, client_secret="", version=smtp.version)
    )
    assert answer.status_code == 302, text_of(answer)[:3000]
    row = SmtpSettings.load()
    assert (row.smtp_server, row.port, row.use_ssl_tls, row.scopes) == (
        smtp.smtp_server,
        smtp.port,
        smtp.use_ssl_tls,
        smtp.scopes,
    )
    assert row.client_secret == CLIENT_SECRET  # not moved: nothing it is bound to changed
    changes = SettingsChange.objects.order_by("-changed_at", "-pk").first()
    assert {item["field"] for item in changes.changes} == {"transport", "graph_host"}


# -- 3. Runs name what they validated, and belong to their connection ---------------------


def start_run(user: Any, values: dict[str, Any], pk: int) -> ValidationRun:
    form = SmtpSettingsForm(values, instance=SmtpSettings(pk=pk), for_validate=True)
    assert form.is_valid(), form.errors
    return validation.validation_run_start(values=form.cleaned_data, user=user, pk=pk)


def test_recent_validations_name_graph_and_each_connection_lists_its_own(
    graph: Any, admin_client: Client, admin_user: Any
) -> None:
    primary = start_run(admin_user, graph.form_values(), SmtpSettings.SINGLETON_PK)
    ValidationRun.objects.filter(pk=primary.pk).update(status="passed")
    fallback = start_run(admin_user, graph_post(graph), SmtpSettings.FALLBACK_PK)
    assert (primary.connection, fallback.connection) == (1, 2)
    manage = admin_client.get(reverse(MANAGE)).content.decode()
    assert str(primary.id) in manage and str(fallback.id) not in manage
    page = admin_client.get(reverse(FALLBACK)).content.decode()
    runs = re.search(r'<section class="card" id="runs".*?</section>', page, re.S).group(0)
    assert str(fallback.id) in runs and str(primary.id) not in runs
    assert "Microsoft Graph" in runs and ":587" not in runs
    # The table the page fetches anew when a run ends is the same connection's.
    assert f"{reverse('smtp_settings:recent_runs')}?connection=fallback" in page
    again = admin_client.get(reverse("smtp_settings:recent_runs"), {"connection": "fallback"})
    assert str(fallback.id) in again.content.decode()
    assert str(primary.id) not in again.content.decode()
    detail = text_of(admin_client.get(reverse("smtp_settings:run_detail", args=[fallback.id])))
    assert "Validation of Microsoft Graph" in detail and "(fallback connection)" in detail
    said = list(
        Entry.objects.filter(summary__startswith="Validate")
        .order_by("at", "pk")
        .values_list("summary", flat=True)
    )
    assert said[0].startswith("Validate started: ") and "OAuth 2.0" in said[0]
    assert said[1].startswith("Validate of the fallback connection started: ")
    assert "Microsoft Graph" in said[1] and ":587" not in said[1] and "oauth2" not in said[1]
    # A finished run of the fallback is no verdict on Manage SMTP's settings.
    ValidationRun.objects.filter(pk=fallback.pk).update(status="failed", finished_at=timezone.now())
    status = admin_client.get(reverse("administration")).content.decode()
    assert str(fallback.id) not in status and "Latest trial of other values" not in status


# -- 4. The fallback connection's saves are labelled --------------------------------------


def test_fallback_saves_and_removal_are_labelled_in_activity_and_recent_changes(
    graph: Any, admin_client: Client
) -> None:
    answer = admin_client.post(reverse(FALLBACK), graph_post(graph))
    assert answer.status_code == 302, text_of(answer)[:3000]
    saved = Entry.objects.get(summary__contains="Client ID").summary
    assert saved.startswith("Fallback connection saved: "), saved
    assert CLIENT_ID in saved and CLIENT_SECRET not in saved
    assert not Entry.objects.filter(summary__startswith="Saved Manage SMTP").exists()
    manage = text_of(admin_client.get(reverse(MANAGE)))
    history = manage[manage.index("Recent changes") :]
    assert "Fallback connection saved" in history
    assert admin_client.post(reverse(FALLBACK), {"action": "remove"}).status_code == 302
    assert Entry.objects.filter(summary="Fallback connection removed.").exists()
    manage = text_of(admin_client.get(reverse(MANAGE)))
    assert "Fallback connection removed" in manage[manage.index("Recent changes") :]


# -- 5. The end of Basic authentication, said once ----------------------------------------


def test_the_basic_notice_is_on_manage_smtp_once(admin_client: Client) -> None:
    row = SmtpSettings.load()
    row.sender_email, row.smtp_server, row.auth_type = SENDER, "smtp.office365.com", "basic"
    row.username, row.password = SENDER, "pw"
    row.save()
    page = text_of(admin_client.get(reverse(MANAGE)))
    assert page.count("550 5.7.30 Basic authentication is not supported") == 1
    assert page.count("Move to OAuth 2.0 with the setup assistant") == 1


# -- 6. The setup assistant's step 5 with Graph ----------------------------------------------

SESSION = "a-session-key"


@pytest.fixture
def graph_setup(graph: Any, admin_user: Any) -> Any:
    assistant.setup_assistant_save(
        user=admin_user,
        values={
            "cloud": f"host:{graph.authority_host}",
            "tenant": TENANT_ID,
            "client_id": CLIENT_ID,
            "transport": "graph",
            "sender_email": SENDER,
            "use_sender_email": True,
        },
    )
    assistant.setup_secret_hold(
        user=admin_user,
        session_key=SESSION,
        secret=CLIENT_SECRET,
        login_host=graph.authority_host,
        client_id=CLIENT_ID,
    )
    graph.app.roles[GRAPH_RESOURCE] = ["Mail.Send"]
    return admin_user


def test_step_five_with_graph_asks_for_no_smtp_server(graph_setup: Any, graph: Any) -> None:
    client = Client()
    client.force_login(graph_setup)
    answer = client.post(
        reverse("smtp_settings:setup"),
        {"part": "mailbox", "action": "save", "sender_email": SENDER, "use_sender_email": "on"},
    )
    assert answer.status_code == 302, text_of(answer)[:3000]
    page = client.get(reverse("smtp_settings:setup")).content.decode()
    step5 = page[page.index('id="step-5"') : page.index('id="finish"')]
    assert 'name="smtp_server"' not in step5 and 'name="port"' not in step5
    assert "FullAccess" not in html.unescape(step5)
    assert "Application Mail.Send" in html.unescape(step5)


def test_step_five_with_graph_says_what_its_check_proved_and_fills_in_the_object_id(
    graph_setup: Any, graph: Any
) -> None:
    for name in ("token", "mailbox"):
        run = assistant.setup_check_start(user=graph_setup, session_key=SESSION, check=name)
        validation.validation_run_execute(run_id=str(run.id))
    state = assistant.setup_progress(user=graph_setup, session_key=SESSION)
    assert state.sp_object_id == graph.app.service_principal_id
    assert f"$EnterpriseAppObjectId = '{graph.app.service_principal_id}'" in state.script()
    client = Client()
    client.force_login(graph_setup)
    page = text_of(client.get(reverse("smtp_settings:setup")))
    step5 = page[page.index("5. Limit the app") : page.index("Use these settings")]
    assert "Exchange accepts the sign-in" not in step5
    assert "not proven" in step5


def test_the_graph_script_explains_a_placeholder_it_could_not_fill(
    graph_setup: Any, graph: Any
) -> None:
    client = Client()
    client.force_login(graph_setup)
    page = text_of(client.get(reverse("smtp_settings:setup")))
    assert "<ENTERPRISE_APP_OBJECT_ID>" in page
    assert "Enterprise applications" in page and "Object ID" in page


def test_saving_the_primary_is_still_labelled_manage_smtp(graph: Any) -> None:
    form = SmtpSettingsForm(graph.form_values(), instance=SmtpSettings.load())
    assert form.is_valid(), form.errors
    services.smtp_settings_save(values=form.cleaned_data, user=None)
    assert Entry.objects.get().summary.startswith("Saved Manage SMTP: ")


# -- 7. The sandbox's switches give Validate Graph's diagnoses -------------------------------


def test_the_sandbox_switches_give_validate_throttling_and_the_scope_fix(
    graph: Any, run_validation: Any
) -> None:
    import requests

    def switch(path: str) -> None:
        answer = requests.post(
            f"{graph.graph.base_url}/sandbox/graph/{path}", verify=str(graph.ca_bundle), timeout=5
        )
        assert answer.status_code == 200, answer.text

    switch("throttle?requests=1&retry_after=30")
    send = run_validation(graph.graph_form_values(), recipient="it@x.example")["by_step"]["send"]
    assert send["diagnosis"] == "graph_throttled" and "429" in send["server_answer"]
    switch(f"out-of-scope?mailbox={SENDER}")
    send = run_validation(graph.graph_form_values(), recipient="it@x.example")["by_step"]["send"]
    assert send["diagnosis"] == "graph_access_scope", send
    assert "Application Mail.Send" in send["fix"]
