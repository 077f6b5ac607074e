"""P5 queries and the growth rows, in this process on a throw-away SQLite database.

P5: SQL queries per request for every page and JSON endpoint, and per validation run in
the worker's code. Growth: Validate POST, Manage SMTP GET, the abandoned-run sweep and the
Outbox and Activity GETs with 1, 10,000 and 100,000 stored runs (and as many outbox messages,
at least a full Outbox page, and activity entries), each as a ratio of its time with 1.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from post_office.models import STATUS, Email

from activity.models import Entry, Kind
from smtp_settings import services, validation
from smtp_settings.forms import SmtpSettingsForm
from smtp_settings.models import Delivery, RunStatus, SmtpSettings, ValidationRun
from smtp_settings.views import OUTBOX_PAGE_SIZE

HOST = {"HTTP_HOST": "127.0.0.1"}
JSON = {**HOST, "HTTP_ACCEPT": "application/json"}
SIZES = (1, 10_000, 100_000)


def _setup(form_values: dict[str, Any]) -> tuple[Client, User]:
    call_command("migrate", verbosity=0)
    # On a shared PostgreSQL database, P3's console (or an earlier run) made one already.
    User.objects.filter(username="bench").delete()
    user = User.objects.create_superuser("bench", "bench@sandbox.example", "a long passphrase 7")
    form = SmtpSettingsForm(form_values, instance=SmtpSettings.load())
    if not form.is_valid():
        raise SystemExit(f"the sandbox values do not validate: {form.errors}")
    services.smtp_settings_save(values=form.cleaned_data, user=user)
    client = Client()
    client.force_login(user)
    return client, user


def _queries(call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


def _timed(call: Callable[[], Any], repeat: int = 7) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _grow_to(size: int, user: User) -> None:
    """Finished runs and sent messages, long ago, up to ``size`` of each."""
    long_ago = timezone.now() - timedelta(days=30)
    missing = size - ValidationRun.objects.count()
    ValidationRun.objects.bulk_create(
        (
            ValidationRun(
                id=uuid.uuid4(),
                requested_by=user,
                status=RunStatus.PASSED,
                created_at=long_ago,
                candidate={"smtp_server": "127.0.0.1", "port": 587},
            )
            for _ in range(max(missing, 0))
        ),
        batch_size=5000,
    )
    missing = max(size, OUTBOX_PAGE_SIZE + 1) - Entry.objects.count()
    Entry.objects.bulk_create(
        (
            Entry(
                at=long_ago,
                actor=user,
                actor_name="bench",
                kind=Kind.SIGNIN_SUCCEEDED,
                summary="Old.",
            )
            for _ in range(max(missing, 0))
        ),
        batch_size=5000,
    )
    # At least a full page of outbox messages (and activity entries, above) from the start:
    # the rows measure the history's growth, not rendering one row against fifty.
    missing = max(size, OUTBOX_PAGE_SIZE + 1) - Email.objects.count()
    for start in range(0, max(missing, 0), 5000):
        emails = Email.objects.bulk_create(
            Email(
                from_email="a@sandbox.example",
                to=["b@x.example"],
                subject="Old",
                status=STATUS.sent,
            )
            for _ in range(min(5000, missing - start))
        )
        Delivery.objects.bulk_create(
            Delivery(email=email, state="sent", sent_at=long_ago) for email in emails
        )


def measure(*, form_values: dict[str, Any]) -> list[dict[str, Any]]:
    client, user = _setup(form_values)
    manage = reverse("smtp_settings:manage")
    # One run through the worker's code, against the sandbox, and one message.
    started = client.post(reverse("smtp_settings:validate"), form_values, **JSON).json()
    run_queries = _queries(lambda: validation.validation_run_execute(run_id=started["run"]))
    _grow_to(1, user)
    pages = {
        "home": reverse("home"),
        "Administration": reverse("administration"),
        "Manage SMTP": manage,
        "run page": started["run_url"],
        "run status.json": started["status_url"],
        "Outbox": reverse("smtp_settings:outbox"),
        "Outbox message": reverse("smtp_settings:outbox_message", args=[Email.objects.first().pk]),
        "Set up Microsoft 365": reverse("smtp_settings:setup"),
        "Users": reverse("accounts:users"),
        "Activity": reverse("activity"),
        "healthz/live": "/healthz/live",
    }
    # Steady state: each page once before counting (the session into the cache, the setup
    # assistant's row made on a first visit).
    for url in pages.values():
        client.get(url, **JSON)
    per_page = {
        name: _queries(lambda url=url: client.get(url, **JSON)) for name, url in pages.items()
    }

    def validate_post() -> None:
        response = client.post(reverse("smtp_settings:validate"), form_values, **JSON)
        if response.status_code != 202:
            raise SystemExit(f"Validate refused: {response.content[:200]!r}")
        # Finished at once, so the next click is not "still running" nor rate-limited.
        ValidationRun.objects.filter(pk=response.json()["run"]).update(
            status=RunStatus.PASSED, created_at=timezone.now() - timedelta(days=1)
        )

    growth: dict[str, list[float]] = {
        "Validate POST": [],
        "Manage SMTP GET": [],
        "abandoned-run sweep": [],
        "Outbox GET": [],
        "Activity GET": [],
    }
    for size in SIZES:
        _grow_to(size, user)
        growth["Validate POST"].append(_timed(validate_post))
        growth["Manage SMTP GET"].append(_timed(lambda: client.get(manage, **HOST)))
        growth["abandoned-run sweep"].append(_timed(validation.validation_runs_expire_abandoned))
        growth["Outbox GET"].append(
            _timed(lambda: client.get(reverse("smtp_settings:outbox"), **HOST))
        )
        growth["Activity GET"].append(_timed(lambda: client.get(reverse("activity"), **HOST)))
    rows = [
        {
            "name": "P5 queries",
            "measure": "SQL queries per page and JSON endpoint, visited once before (most of any)",
            "goal": "≤ 5 per page",
            "values": [float(max(per_page.values()))],
            "detail": ", ".join(f"{name} {count}" for name, count in per_page.items()),
        },
        {
            "name": "P5 run",
            "measure": "SQL queries of one validation run in the worker",
            "goal": "≤ 10",
            "values": [float(run_queries)],
            "detail": f"{run_queries} queries for one passing run against the sandbox",
        },
    ]
    for name, times in growth.items():
        rows.append(
            {
                "name": f"Growth: {name}",
                "measure": "time with 100,000 of each stored row ÷ time with 1 (median of 7)",
                "goal": "≤ 1.2",
                "values": [times[-1] / times[0]],
                "detail": ", ".join(
                    f"{size:,}: {seconds * 1000:.1f} ms"
                    for size, seconds in zip(SIZES, times, strict=True)
                ),
            }
        )
    return rows
