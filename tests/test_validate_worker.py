"""Validate through a real Celery worker on the configured broker (Redis in CI), and the
promise that no secret or token is left in the broker, the logs, the pages or the database."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from sei_admin.celery import app
from smtp_settings.models import ValidationRun

from .sandbox.world import CLIENT_SECRET

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def admin(transactional_db: Any) -> Client:
    user = User.objects.create_superuser("ops", "ops@sandbox.example", "a long passphrase 7")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def worker(transactional_db: Any) -> Iterator[Any]:
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as w:
        yield w


def wait_until_finished(client: Client, status_url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(status_url).json()
        if status["finished"]:
            return status
        time.sleep(0.1)
    raise AssertionError(f"the run did not finish: {status}")


def start(client: Client, values: dict[str, Any], **extra: str) -> dict[str, Any]:
    response = client.post(reverse("smtp_settings:validate"), {**values, **extra}, **JSON)
    assert response.status_code == 202, response.content
    return response.json()


def test_happy_path_through_the_worker(sandbox: Any, admin: Client, worker: Any) -> None:
    started = start(admin, sandbox.form_values(), test_recipient="it@elsewhere.example")
    result = wait_until_finished(admin, started["status_url"])
    assert result["status"] == "passed", result
    assert len(sandbox.exchange.delivered) == 1


def test_wrong_secret_through_the_worker(sandbox: Any, admin: Client, worker: Any) -> None:
    values = {**sandbox.form_values(), "client_secret": "not-the-value"}
    result = wait_until_finished(admin, start(admin, values)["status_url"])
    token = result["steps"][0]
    assert token["status"] == "failed" and token["diagnosis"] == "aadsts_wrong_secret"


def test_missing_mailbox_permission_through_the_worker(
    sandbox: Any, admin: Client, worker: Any
) -> None:
    sandbox.mailbox.full_access.clear()
    result = wait_until_finished(admin, start(admin, sandbox.form_values())["status_url"])
    by_key = {step["key"]: step for step in result["steps"]}
    assert by_key["authenticate"]["diagnosis"] == "auth_mailbox_permission"
    assert "Add-MailboxPermission" in "\n".join(by_key["authenticate"]["commands"])


def broker_contents() -> bytes:
    """Every key and value the broker holds right now."""
    url = django_settings.CELERY_BROKER_URL
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url)
        chunks: list[bytes] = []
        for key in client.scan_iter():
            chunks.append(key)
            kind = client.type(key)
            if kind == b"string":
                chunks.append(client.get(key) or b"")
            elif kind == b"list":
                chunks.extend(client.lrange(key, 0, -1))
            elif kind == b"hash":
                for field, value in client.hgetall(key).items():
                    chunks.extend([field, value])
            elif kind == b"set":
                chunks.extend(client.smembers(key))
            elif kind == b"zset":
                chunks.extend(client.zrange(key, 0, -1))
        return b"\n".join(chunks)
    folder = Path(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    return b"\n".join(path.read_bytes() for path in folder.parent.rglob("*") if path.is_file())


def validation_rows() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM smtp_settings_validationrun")
        runs = cursor.fetchall()
        cursor.execute("SELECT * FROM smtp_settings_validationstep")
        steps = cursor.fetchall()
    return repr(runs) + repr(steps)


def test_no_secret_or_token_in_broker_logs_pages_or_database(
    sandbox: Any, admin: Client, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    started = start(admin, sandbox.form_values(), test_recipient="it@elsewhere.example")
    # Queued, before any worker took it: the message in the broker carries the run id only.
    queued = broker_contents()
    assert started["run"].encode() in queued
    assert CLIENT_SECRET.encode() not in queued

    pages: list[str] = []
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pages.append(admin.get(started["status_url"]).content.decode())
            assert CLIENT_SECRET.encode() not in broker_contents()
            if '"finished": true' in pages[-1]:
                break
            time.sleep(0.05)
    pages.append(admin.get(started["run_url"]).content.decode())
    pages.append(admin.get(reverse("smtp_settings:manage")).content.decode())

    tokens = sandbox.entra.issued_tokens
    assert tokens, "the run never got a token"
    assert '"status": "passed"' in pages[-3]
    run = ValidationRun.objects.get(pk=started["run"])
    assert run.candidate_secret is None
    places = {
        "broker": broker_contents().decode(errors="replace"),
        "logs": caplog.text + "".join(capfd.readouterr()),
        "pages": "\n".join(pages),
        "database": validation_rows(),
    }
    for place, text in places.items():
        assert CLIENT_SECRET not in text, f"the client secret is in the {place}"
        for token in tokens:
            assert token not in text, f"an access token is in the {place}"
            assert token.split(".")[2] not in text, f"a token signature is in the {place}"
