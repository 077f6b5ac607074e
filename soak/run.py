"""One soak run: queue, deliver with workers that are killed, cut the broker, count.

The caller has Django set up on the database and broker the workers use, a sandbox
started, and passes the workers' environment; this module is the timeline and the count.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from smtp_settings import services
from smtp_settings.forms import SmtpSettingsForm
from smtp_settings.models import Delivery, DeliveryState, SmtpSettings, WorkerHeartbeat
from soak.config import SoakConfig
from soak.processes import Processes
from soak.receiving import HEADER, Received, Receiver

_TICK = 0.1


class Cut(Protocol):
    def cut(self) -> None: ...
    def restore(self) -> None: ...


def configure(form_values: dict[str, str]) -> None:
    """Manage SMTP set to the sandbox through the form and the service layer, as saved
    from the page."""
    form = SmtpSettingsForm(form_values, instance=SmtpSettings.load())
    if not form.is_valid():
        raise SystemExit(f"soak: the sandbox's values do not validate: {form.errors}")
    services.smtp_settings_save(values=form.cleaned_data, user=None)


def queue(count: int, sender: str) -> dict[str, int]:
    """``count`` messages through the console's EMAIL_BACKEND, each with its soak id;
    returns each id's outbox row."""
    token = secrets.token_hex(4)
    messages = [
        EmailMessage(
            f"Soak {n}",
            "A soak message.\n" * 20,
            sender,
            [f"soak{n}@x.example"],
            headers={HEADER: f"{token}-{n}"},
        )
        for n in range(count)
    ]
    before = Delivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    get_connection("smtp_settings.outbox.queue.OutboxBackend").send_messages(messages)
    rows = Delivery.objects.filter(pk__gt=before).values_list("pk", "email__headers")
    found = {
        headers[HEADER]: pk
        for pk, headers in rows
        if str((headers or {}).get(HEADER, "")).startswith(f"{token}-")
    }
    if len(found) != count:
        raise SystemExit(f"soak: {len(found)} of {count} messages found in the outbox")
    return found


def _wait_for_workers(count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (
        WorkerHeartbeat.objects.filter(
            role=WorkerHeartbeat.WORKER, worker__startswith="soak"
        ).count()
        < count
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: {count} workers did not start within {timeout:.0f} s")
        time.sleep(_TICK)


def _unsent(rows: dict[str, int]) -> bool:
    first = min(rows.values())
    return Delivery.objects.filter(pk__gte=first).exclude(state=DeliveryState.SENT).exists()


def run(
    config: SoakConfig,
    *,
    sandbox: Any,
    worker_env: dict[str, str],
    logs: Path,
    cut: Cut | None,
) -> dict[str, Any]:
    queues = f"{settings.SEI_INTERACTIVE_QUEUE},{settings.CELERY_TASK_DEFAULT_QUEUE}"
    processes = Processes(env=worker_env, queues=queues, logs=logs)
    receiver = Receiver(sandbox.exchange)
    kills: list[dict[str, Any]] = []
    broker: dict[str, Any] = {"cut_seconds": config.broker_cut if cut else 0.0}
    configure(sandbox.form_values())
    cut_from = restored_at = None
    try:
        for _ in range(config.workers):
            processes.start_worker()
        processes.start_beat()
        _wait_for_workers(config.workers)
        rows = queue(config.messages, sandbox.form_values()["sender_email"])
        queued_at = time.monotonic()
        by_pk = {pk: soak_id for soak_id, pk in rows.items()}
        deadline = queued_at + config.timeout
        next_kill = queued_at + config.kill_every if config.kill_every else float("inf")
        cut_at = queued_at + config.cut_after if cut and config.broker_cut else float("inf")
        finished_at = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            # Nor does the cut begin while a kill's messages wait for their claims to lapse.
            kill_settled = not kills or all(
                receiver.now().first_after(by_pk[pk], kills[-1]["at"]) is not None
                for pk in kills[-1]["claimed"]
                if pk in by_pk
            )
            if cut is not None and cut_from is None and now >= cut_at and kill_settled:
                cut.cut()
                cut_from = now
            elif (
                cut is not None
                and cut_from is not None
                and restored_at is None
                and now >= cut_from + config.broker_cut
            ):
                cut.restore()
                restored_at = time.monotonic()
            broker_away = cut_from is not None and (
                restored_at is None or receiver.now().first_arrival_after(restored_at) is None
            )
            # A kill waits while the broker is away (its figure would measure the cut), and
            # once the cut is due (each kill holds the cut back until its messages arrived:
            # kills one after another would keep it back until nothing was left to deliver).
            cut_due = cut_from is None and now >= cut_at
            kills_left = not config.kills or len(kills) < config.kills
            if config.kill_after_messages:
                arrived = len(receiver.now().arrivals)
                kill_due = arrived >= config.kill_after_messages * (len(kills) + 1)
            else:
                kill_due = now >= next_kill
            if kill_due and kills_left and not (broker_away or cut_due):
                kills.append(_kill(processes, len(kills) % config.workers, queued_at))
                next_kill = time.monotonic() + config.kill_every
            # Done when every message arrived and no row waits, the broker being back.
            cut_over = cut_from is None or restored_at is not None
            if cut_over and set(rows) <= receiver.now().counts.keys() and not _unsent(rows):
                finished_at = time.monotonic()
                break
            time.sleep(_TICK)
    finally:
        if cut is not None and cut_from is not None and restored_at is None:
            cut.restore()
            restored_at = time.monotonic()
        processes.stop()
    got = receiver.now()
    if cut_from is not None and restored_at is not None:
        resumed = got.first_arrival_after(restored_at)
        broker.update(
            cut_at=round(cut_from - queued_at, 1),
            restored_at=round(restored_at - queued_at, 1),
            resumed_after=round(resumed - restored_at, 1) if resumed else None,
            # Everything had arrived before the broker came back: nothing to resume.
            left_after_cut=len(rows)
            - len(got.counts.keys() & rows.keys())
            + sum(1 for soak_id, at in got.arrivals if at >= restored_at and soak_id in rows),
        )
    return _count(config, rows, got, kills, broker, queued_at, finished_at)


def _kill(processes: Processes, slot: int, queued_at: float) -> dict[str, Any]:
    killed_at = time.monotonic()
    pid = processes.kill(slot)
    # The dead worker's message is among the rows claimed now (the other worker's is sent
    # within moments; the dead one's waits for its claim to lapse).
    claimed = list(
        Delivery.objects.filter(state=DeliveryState.SENDING).values_list("pk", flat=True)
    )
    processes.start_worker(slot)
    return {
        "at": killed_at,
        "second": round(killed_at - queued_at, 1),
        "pid": pid,
        "claimed": claimed,
    }


def _count(
    config: SoakConfig,
    rows: dict[str, int],
    got: Received,
    kills: list[dict[str, Any]],
    broker: dict[str, Any],
    queued_at: float,
    finished_at: float | None,
) -> dict[str, Any]:
    counts = Counter({soak_id: n for soak_id, n in got.counts.items() if soak_id in rows})
    by_pk = {pk: soak_id for soak_id, pk in rows.items()}
    duplicates = {soak_id: n - 1 for soak_id, n in counts.items() if n > 1}
    last = max((at for soak_id, at in got.arrivals if soak_id in rows), default=queued_at)
    # Queued to the last arrival, as the server saw it: the run itself may go on after it
    # (the broker still away, the last rows' marks).
    drain = last - queued_at
    stuck = Counter(
        Delivery.objects.filter(pk__in=rows.values())
        .exclude(state=DeliveryState.SENT)
        .values_list("state", flat=True)
    )
    for kill in kills:
        arrivals = [
            got.first_after(by_pk[pk], kill["at"]) for pk in kill.pop("claimed") if pk in by_pk
        ]
        waits = [at - kill["at"] for at in arrivals if at is not None]
        kill["delivered_after"] = round(max(waits), 1) if waits else None
        del kill["at"]
    after_data = [soak_id for soak_id in got.dropped_after_data if soak_id in rows]
    return {
        "config": config.as_dict(),
        "claim_seconds": settings.SMTP_OUTBOX_CLAIM_SECONDS,
        "sweep_seconds": settings.CELERY_BEAT_SCHEDULE["deliver-outbox"]["schedule"],
        "queued": len(rows),
        "delivered": sum(counts.values()),
        "unique": len(counts),
        "duplicates": sum(duplicates.values()),
        "duplicate_ids": sorted(duplicates),
        "unexplained_duplicates": sorted(set(duplicates) - set(after_data)),
        "lost": len(rows.keys() - counts.keys()),
        "stuck": dict(stuck),
        "drain_seconds": round(drain, 1),
        "messages_per_second": round(len(counts) / drain, 1) if drain > 0 else 0.0,
        "finished": finished_at is not None,
        "kills": kills,
        "kills_between_data_and_answer": len(after_data),
        "dropped_in_data": got.dropped_in_data,
        "broker": broker,
    }
