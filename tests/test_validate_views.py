"""The Validate endpoint: field errors as on Save, guard rails, nothing saved, JSON progress."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from smtp_settings.models import RunStatus, SmtpSettings, ValidationRun

from .conftest import CLIENT_SECRET

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def test_field_errors_come_back_as_on_save_and_no_run_starts(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    response = admin_client.post(
        reverse("smtp_settings:validate"),
        {**oauth_form_data, "smtp_server": "smtp://x", "test_recipient": "not-an-address"},
        **JSON,
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "without a scheme" in errors["smtp_server"][0]["message"]
    assert "test_recipient" in errors
    assert not ValidationRun.objects.exists()


def test_validate_starts_a_run_and_saves_nothing(
    admin_client: Client, oauth_form_data: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse("smtp_settings:validate"),
            {**oauth_form_data, "test_recipient": "ops@contoso.example"},
            **JSON,
        )
    assert response.status_code == 202
    run = ValidationRun.objects.get()
    assert response.json()["status_url"] == reverse("smtp_settings:run_status", args=[run.id])
    assert run.test_recipient == "ops@contoso.example"
    assert run.candidate["smtp_server"] == "smtp.office365.com"
    assert run.candidate_secret == CLIENT_SECRET  # encrypted at rest, erased when the run ends
    assert CLIENT_SECRET not in str(run.candidate)
    assert not SmtpSettings.objects.exists()
    assert len(callbacks) == 1  # the task is enqueued once the run is committed
    # The answer carries the steps as queued, so the page shows them without asking again.
    shown = response.json()["html"]
    assert "Token" in shown and "Sender accepted" in shown and CLIENT_SECRET not in shown

    status = admin_client.get(response.json()["status_url"]).json()
    assert status["status"] == "queued"
    assert [step["key"] for step in status["steps"]] == [
        "token",
        "token_contents",
        "connect",
        "tls",
        "authenticate",
        "sender",
        "send",
    ]
    assert CLIENT_SECRET not in str(status)


def test_blank_secret_validates_the_stored_one(
    admin_client: Client, oauth_form_data: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    admin_client.post(reverse("smtp_settings:manage"), oauth_form_data)
    with django_capture_on_commit_callbacks():
        admin_client.post(
            reverse("smtp_settings:validate"), {**oauth_form_data, "client_secret": ""}, **JSON
        )
    run = ValidationRun.objects.get()
    assert run.candidate_secret == CLIENT_SECRET
    assert run.candidate["secret_source"] == "stored"


def test_one_run_at_a_time_per_administrator(
    admin_client: Client, oauth_form_data: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks():
        first = admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON)
        second = admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON)
    assert first.status_code == 202
    assert second.status_code == 429
    assert "still running" in second.json()["refused"]
    assert ValidationRun.objects.count() == 1


def test_rate_limit_per_administrator(
    admin_client: Client,
    oauth_form_data: dict[str, Any],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SMTP_VALIDATION_MAX_RUNS = 2
    for _ in range(2):
        with django_capture_on_commit_callbacks():
            admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON)
        ValidationRun.objects.update(status=RunStatus.FAILED, candidate_secret=None)
    refused = admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON)
    assert refused.status_code == 429
    assert "5.2.251" in refused.json()["refused"]


def test_abandoned_runs_end_and_lose_their_secret(
    admin_client: Client, oauth_form_data: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    with django_capture_on_commit_callbacks():
        admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON)
    ValidationRun.objects.update(created_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks():
        again = admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON)
    assert again.status_code == 202
    old = ValidationRun.objects.order_by("created_at").first()
    assert old.status == RunStatus.ERROR and old.candidate_secret is None
    assert "worker" in old.summary


def test_beat_erases_the_secret_of_a_run_no_worker_took(
    admin_client: Client, oauth_form_data: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from smtp_settings import tasks

    with django_capture_on_commit_callbacks():
        admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON)
    ValidationRun.objects.update(created_at=timezone.now() - timedelta(hours=1))
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "smtp_settings.tasks.expire_abandoned_validation_runs" in scheduled
    tasks.expire_abandoned_validation_runs()
    assert ValidationRun.objects.get().candidate_secret is None


def test_run_pages_need_the_permission(client: Client, plain_user: Any, admin_user: Any) -> None:
    run = ValidationRun.objects.create(requested_by=admin_user, candidate={})
    client.force_login(plain_user)
    assert client.get(reverse("smtp_settings:run_status", args=[run.id])).status_code == 403
    assert client.get(reverse("smtp_settings:run_detail", args=[run.id])).status_code == 403
    assert client.post(reverse("smtp_settings:validate"), {}).status_code == 403


def test_validate_without_javascript_redirects_to_the_run_page(
    admin_client: Client, oauth_form_data: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks():
        response = admin_client.post(reverse("smtp_settings:validate"), oauth_form_data)
    run = ValidationRun.objects.get()
    assert response["Location"] == reverse("smtp_settings:run_detail", args=[run.id])
    page = admin_client.get(response["Location"]).content.decode()
    assert "Validation of smtp.office365.com:587" in page and "Waiting" in page
    assert CLIENT_SECRET not in page


def test_validate_is_csrf_protected(admin_user: Any, oauth_form_data: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(reverse("smtp_settings:validate"), oauth_form_data).status_code == 403
    assert not ValidationRun.objects.exists()


def test_token_endpoint_hosts_are_limited_to_microsoft_by_default(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    data = {**oauth_form_data, "token_endpoint": "https://login.example.org/t/oauth2/v2.0/token"}
    response = admin_client.post(reverse("smtp_settings:validate"), data, **JSON)
    assert "SMTP_OAUTH_AUTHORITY_HOSTS" in response.json()["errors"]["token_endpoint"][0]["message"]


def test_recent_runs_are_listed_and_open_to_their_steps(
    admin_client: Client, admin_user: Any
) -> None:
    run = ValidationRun.objects.create(
        requested_by=admin_user,
        candidate={"smtp_server": "smtp.office365.com", "port": 587},
        status=RunStatus.FAILED,
        summary="Token failed. Entra ID rejected the client secret (AADSTS7000215).",
    )
    html = admin_client.get(reverse("smtp_settings:manage")).content.decode()
    assert "Recent validations" in html
    assert reverse("smtp_settings:run_detail", args=[run.id]) in html
    assert "root-admin" in html and "Failed" in html
    detail = admin_client.get(reverse("smtp_settings:run_detail", args=[run.id])).content.decode()
    assert "AADSTS7000215" in detail


def test_old_validation_runs_are_purged_but_the_latest_fifty_stay(admin_user: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from smtp_settings import validation
    from smtp_settings.models import ValidationStep

    long_ago = timezone.now() - timedelta(days=200)
    for n in range(60):
        run = ValidationRun.objects.create(
            requested_by=admin_user,
            status=RunStatus.PASSED,
            created_at=long_ago + timedelta(minutes=n),
        )
        ValidationStep.objects.create(run=run, position=0, key="token", name="Token")
    recent = ValidationRun.objects.create(requested_by=admin_user, status=RunStatus.PASSED)
    assert validation.validation_runs_purge() == 11
    assert (
        ValidationRun.objects.count() == 50 and ValidationRun.objects.filter(pk=recent.pk).exists()
    )
    assert ValidationStep.objects.count() == 49  # the steps went with their runs


def test_validate_runs_without_an_expiration_date_and_says_save_will_ask(
    sandbox: Any, admin_client: Client
) -> None:
    from smtp_settings import validation

    values = {**sandbox.form_values(), "secret_expiration_date": ""}
    response = admin_client.post(reverse("smtp_settings:validate"), values, **JSON)
    assert response.status_code == 202
    validation.validation_run_execute(run_id=response.json()["run"])
    status = admin_client.get(response.json()["status_url"]).json()
    assert status["status"] == "passed"
    assert "Secret Expiration Date is empty: Save will ask for it" in status["summary"]
    saved = admin_client.post(reverse("smtp_settings:manage"), values)
    assert (
        saved.status_code == 400 and "Enter the date the secret expires" in saved.content.decode()
    )


# -- what a run costs, and how its progress reaches the page ---------------------------------


def test_a_run_with_every_step_costs_the_worker_at_most_ten_queries(
    sandbox: Any, admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    from smtp_settings import validation

    values = {**sandbox.form_values(), "test_recipient": "it@x.example"}
    started = admin_client.post(reverse("smtp_settings:validate"), values, **JSON).json()
    with django_assert_max_num_queries(10):
        validation.validation_run_execute(run_id=started["run"])
    run = admin_client.get(started["status_url"]).json()
    assert run["status"] == "passed" and "test message went to it@x.example" in run["summary"]
    assert [step["status"] for step in run["steps"]] == ["passed"] * 7


def test_a_failed_step_skips_the_rest_in_one_write_and_names_the_failure(
    sandbox: Any, admin_client: Client
) -> None:
    from smtp_settings import validation

    values = {**sandbox.form_values(), "client_secret": "not the secret"}
    started = admin_client.post(reverse("smtp_settings:validate"), values, **JSON).json()
    validation.validation_run_execute(run_id=started["run"])
    run = admin_client.get(started["status_url"]).json()
    assert run["status"] == "failed" and run["summary"].startswith("Token failed.")
    assert [step["status"] for step in run["steps"]] == ["failed"] + ["skipped"] * 6


def test_while_a_run_runs_the_first_waiting_step_shows_as_running(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    started = admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON).json()
    queued = admin_client.get(started["status_url"]).json()
    assert {step["status"] for step in queued["steps"]} == {"pending"}
    ValidationRun.objects.update(status=RunStatus.RUNNING)
    ValidationRun.objects.get().steps.filter(key="token").update(status="passed")
    running = admin_client.get(started["status_url"]).json()
    assert [step["status"] for step in running["steps"][:3]] == ["passed", "running", "pending"]


def test_a_run_claimed_long_ago_lives_while_its_steps_keep_ending(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from smtp_settings import validation

    admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON)
    long_ago = timezone.now() - timedelta(minutes=10)
    ValidationRun.objects.update(status=RunStatus.RUNNING, heartbeat_at=long_ago)
    run = ValidationRun.objects.get()
    run.steps.filter(key="token").update(status="passed", ended_at=timezone.now())
    assert validation.validation_runs_expire_abandoned() == 0
    run.steps.filter(key="token").update(ended_at=long_ago)
    assert validation.validation_runs_expire_abandoned() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.ERROR and run.candidate_secret is None


def test_the_status_request_answers_as_soon_as_the_worker_writes(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    import threading

    from smtp_settings.validation import progress

    started = admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON).json()
    first = admin_client.get(started["status_url"]).json()
    # The worker's word comes from another thread while the request waits on it.
    timer = threading.Timer(0.3, progress.touch, args=[started["run"]])
    timer.start()
    answer = admin_client.get(started["status_url"], {"seen": first["mark"]}, **JSON).json()
    timer.join()
    assert answer["mark"] != first["mark"] and answer["mark"] == progress.mark(started["run"])
    # A mark the request has not seen yet, or a finished run's, is answered without waiting.
    progress.touch(started["run"], final=True)
    assert progress.wait(started["run"], seen=answer["mark"], timeout=60).startswith("final-")
    final = progress.mark(started["run"])
    assert progress.wait(started["run"], seen=final, timeout=60) == final


def test_only_so_many_status_requests_wait_at_once_the_rest_answer_at_once(
    settings: Any,
) -> None:
    """A waiting request holds a web thread; open run pages must never take them all."""
    import threading

    from smtp_settings.validation import progress

    settings.SEI_LONG_POLLS_PER_PROCESS = 1
    progress.touch("run-a")
    seen = progress.mark("run-a")
    first = threading.Thread(
        target=progress.wait, args=["run-a"], kwargs={"seen": seen, "timeout": 30}
    )
    first.start()
    try:
        for _ in range(200):  # until the first request is waiting
            if progress._waiting == 1:
                break
            threading.Event().wait(0.01)
        assert progress._waiting == 1
        # The second has nothing new to say and says it at once: the first still waits.
        assert progress.wait("run-a", seen=seen, timeout=30) == seen
        assert first.is_alive()
    finally:
        progress.touch("run-a")
        first.join(timeout=10)
    assert not first.is_alive() and progress._waiting == 0


def test_a_run_no_worker_takes_says_so_before_it_is_given_up(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    started = admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON).json()
    assert 'id="run-unclaimed"' not in admin_client.get(started["status_url"]).json()["html"]
    ValidationRun.objects.update(created_at=timezone.now() - timedelta(seconds=20))
    shown = admin_client.get(started["status_url"]).json()
    assert shown["status"] == "queued"
    assert "No worker has taken this run in 20 seconds" in shown["html"]


def test_a_run_waiting_behind_busy_workers_says_they_are_busy_not_stopped(
    admin_client: Client, oauth_form_data: dict[str, Any]
) -> None:
    from datetime import timedelta

    from django.utils import timezone
    from post_office.models import Email

    from smtp_settings.models import Delivery, DeliveryState, WorkerHeartbeat
    from smtp_settings.validation.service import validation_runs_expire_abandoned

    # A worker reported a moment ago and is sending outbox mail; more waits.
    WorkerHeartbeat.objects.create(worker="celery@busy", role="worker", seen_at=timezone.now())
    for n, state in enumerate([DeliveryState.SENDING, DeliveryState.QUEUED]):
        email = Email.objects.create(from_email="a@x.example", to=["b@x.example"], subject=str(n))
        Delivery.objects.create(
            email=email, state=state, claimed_until=timezone.now() + timedelta(seconds=10)
        )
    started = admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON).json()
    ValidationRun.objects.update(created_at=timezone.now() - timedelta(seconds=20))
    shown = admin_client.get(started["status_url"]).json()["html"]
    assert "busy delivering the outbox (1 messages waiting)" in shown
    assert "Check that the Celery worker is running" not in shown

    ValidationRun.objects.update(created_at=timezone.now() - timedelta(seconds=100))
    assert validation_runs_expire_abandoned() == 1
    summary = ValidationRun.objects.get().summary
    assert "busy delivering the outbox" in summary and "worker is running" not in summary


def test_recent_validations_never_show_an_abandoned_run_as_queued(
    admin_client: Client, oauth_form_data: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    # Queued with no worker and no beat to end it (under make run both stop together).
    with django_capture_on_commit_callbacks():
        admin_client.post(reverse("smtp_settings:validate"), oauth_form_data, **JSON)
    ValidationRun.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    table = admin_client.get(reverse("smtp_settings:recent_runs")).content.decode()
    assert "Queued" not in table and "Could not finish" in table
    run = ValidationRun.objects.get()
    assert run.status == RunStatus.ERROR and run.candidate_secret is None
