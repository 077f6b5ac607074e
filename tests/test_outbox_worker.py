"""The outbox with real Celery worker processes on the configured broker (Redis in CI): a
worker killed mid-send loses nothing, and no secret or token shows up anywhere."""

from __future__ import annotations

import email
import email.policy
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse

from smtp_settings.models import Delivery, DeliveryState

from .sandbox.world import CLIENT_SECRET, SENDER
from .test_sending import save
from .test_validate_worker import broker_contents

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
CLAIM_SECONDS = 3


@pytest.fixture(autouse=True)
def _outbox_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"


def database_url_for_workers() -> str:
    """The URL of the database this test runs on, for a worker in another process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(
    arguments: list[str], *, sandbox: Any, log: Path, **extra_env: str
) -> subprocess.Popen[bytes]:
    """A Celery worker in its own process group, on this test's database and broker, that
    trusts the sandbox's token endpoint and consumes every queue a worker consumes by default."""
    queues = f"{django_settings.SEI_INTERACTIVE_QUEUE},{django_settings.CELERY_TASK_DEFAULT_QUEUE}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_workers(),
        "SMTP_OAUTH_AUTHORITY_HOSTS": sandbox.authority_host,
        "SMTP_MAX_MESSAGES_PER_MINUTE": "600",
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "sei_admin", "worker", *arguments, "-Q", queues],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


@pytest.fixture
def worker_process(sandbox: Any, tmp_path: Path) -> Callable[[str], subprocess.Popen[bytes]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, **extra_env: str) -> subprocess.Popen[bytes]:
        process = start_worker(
            ["--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"{name}@%h"],
            sandbox=sandbox, log=tmp_path / f"{name}.log",
            **{"SMTP_OUTBOX_CLAIM_SECONDS": str(CLAIM_SECONDS),
               "SMTP_NETWORK_TIMEOUT_SECONDS": "5", "DJANGO_LOG_LEVEL": "DEBUG", **extra_env},
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def subjects(sandbox: Any) -> Counter[str]:
    return Counter(
        str(email.message_from_bytes(content, policy=email.policy.default)["Subject"])
        for _, content in sandbox.exchange.delivered
    )


def test_a_worker_killed_mid_send_loses_nothing(sandbox: Any, worker_process: Any) -> None:
    save(sandbox.form_values())
    expected = {f"Message {n}" for n in range(30)}
    for name in sorted(expected):
        mail.send_mail(name, "Body", SENDER, ["it@x.example"])

    first = worker_process("first")
    wait_for(lambda: len(sandbox.exchange.delivered) >= 5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert len(sandbox.exchange.delivered) < 30, "the worker finished before it was killed"

    worker_process("second")
    # Beat's sweep, once the dead worker's claim has run out.
    time.sleep(CLAIM_SECONDS + 0.5)
    from celery import current_app

    current_app.send_task("smtp_settings.tasks.deliver_outbox")
    wait_for(lambda: set(Delivery.objects.values_list("state", flat=True)) == {"sent"})

    received = subjects(sandbox)
    assert set(received) == expected  # none lost
    repeated = {subject: n for subject, n in received.items() if n > 1}
    assert sum(repeated.values()) - len(repeated) <= 1, repeated  # only the one in flight


def test_no_secret_or_token_in_the_outbox_broker_logs_or_pages(
    sandbox: Any, worker_process: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    admin = Client()
    admin.force_login(user)
    save(sandbox.form_values())
    for n in range(3):
        mail.send_mail(f"Leak check {n}", "Body", SENDER, ["it@x.example"])
    sandbox.exchange.handler.recipient_answers["nobody@sandbox.example"] = "550 5.1.10 Not found"
    mail.send_mail("Refused", "Body", SENDER, ["nobody@sandbox.example"])
    queued = broker_contents()
    worker_process("leaks")
    wait_for(lambda: not Delivery.objects.exclude(state__in=["sent", "failed"]).exists())

    pages = [admin.get(reverse("smtp_settings:outbox")).content.decode()]
    for pk in Delivery.objects.values_list("pk", flat=True):
        pages.append(admin.get(reverse("smtp_settings:outbox_message", args=[pk])).content.decode())
    with connection.cursor() as cursor:
        rows = []
        for table in ("post_office_email", "post_office_log", "smtp_settings_delivery",
                      "smtp_settings_smtpsettings", "smtp_settings_settingschange"):  # fmt: skip
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608  (fixed names)
            rows.append(repr(cursor.fetchall()))
    tokens = sandbox.entra.issued_tokens
    assert (
        tokens
        and Delivery.objects.filter(
            state=DeliveryState.SENT, email__subject__startswith="Leak"
        ).count()
        == 3
    )
    places = {
        "broker": (queued + broker_contents()).decode(errors="replace"),
        "logs": caplog.text + (tmp_path / "leaks.log").read_text(errors="replace"),
        "pages": "\n".join(pages),
        "database": "\n".join(rows),
    }
    for place, text in places.items():
        assert CLIENT_SECRET not in text, f"the client secret is in the {place}"
        for token in tokens:
            assert token not in text, f"an access token is in the {place}"
            assert token.split(".")[2] not in text, f"a token signature is in the {place}"


def test_a_validate_run_whose_worker_is_killed_ends_and_loses_its_secret(
    sandbox: Any, worker_process: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from smtp_settings.models import ValidationRun

    user = User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    admin = Client()
    admin.force_login(user)
    sandbox.entra.delay_seconds = 5  # the token step is still running when the worker dies
    worker = worker_process("validating")
    started = admin.post(
        reverse("smtp_settings:validate"), sandbox.form_values(), HTTP_ACCEPT="application/json"
    ).json()
    wait_for(lambda: ValidationRun.objects.filter(pk=started["run"], status="running").exists())
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    run = ValidationRun.objects.get(pk=started["run"])
    assert run.status == "running" and run.candidate_secret is not None

    # A minute later the worker has not touched the run: the page ends it at once.
    ValidationRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=1)
    )
    status = admin.get(started["status_url"]).json()
    assert status["status"] == "error" and "worker" in status["summary"]
    assert ValidationRun.objects.get(pk=run.pk).candidate_secret is None
    again = admin.post(
        reverse("smtp_settings:validate"), sandbox.form_values(), HTTP_ACCEPT="application/json"
    )
    assert again.status_code == 202  # the dead run no longer blocks a new one
