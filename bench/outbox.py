"""P4 outbox drain: messages/s from stored to received, the console's outbox with two real
workers against django-post-office sending the same messages and Django's SMTP backend.

Every side sends the same stored messages to the same sandbox server. The outbox: two
Celery workers (one process each, as ``make soak`` runs them) drain what ``send_mail``
stored, with the per-mailbox limits in force but raised for the run, claims renewed and
each message's state written before the next goes (nothing sent twice by a kill outside
DATA). post_office: its own ``mail.send_queued()`` (the ``send_queued_mail`` command
refuses on purpose) with its defaults, on the same rows queued again. Django: its SMTP
backend from this process, one connection, the messages built beforehand. The clock
starts when the rows are committed and stops when the server has the last message.
The server offers PIPELINING and CHUNKING as Exchange Online does: the outbox sends a message
in one write and one round trip; both baselines send through smtplib, a command at a time.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend as DjangoSmtpBackend
from django.db import transaction
from post_office import mail as post_office_mail
from post_office.models import STATUS, Email

from bench.sandbox_process import SandboxProcess
from smtp_settings.models import Delivery, DeliveryState, WorkerHeartbeat
from smtp_settings.outbox.queue import OutboxBackend
from soak.processes import Processes
from soak.run import configure

WORKERS = 2
_TICK = 0.005


def _arrived(world: SandboxProcess, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while world.ask("delivered") < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"P4: {count - world.ask('delivered')} messages did not arrive")
        time.sleep(_TICK)


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far (ended ones count nothing)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class _Cpu:
    """CPU milliseconds per message of the senders and of the server, over one side's run."""

    def __init__(self, world: SandboxProcess, senders: list[int]) -> None:
        self.pids = senders, [world.pid]
        self.at = [_cpu_seconds(pids) for pids in self.pids]

    def per_message(self, count: int) -> tuple[float, float]:
        used = [_cpu_seconds(pids) - at for pids, at in zip(self.pids, self.at, strict=True)]
        return used[0] * 1000 / count, used[1] * 1000 / count


def _outbox(
    world: SandboxProcess, messages: list[EmailMessage], workers: list[int]
) -> tuple[float, list[int], tuple[float, float]]:
    before = world.ask("delivered")
    cpu = _Cpu(world, workers)
    first = (Delivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    stored: list[float] = []
    with transaction.atomic():
        # Before the outbox's own hook, which asks the workers to deliver.
        transaction.on_commit(lambda: stored.append(time.perf_counter()))
        OutboxBackend().send_messages(messages)
    _arrived(world, before + len(messages))
    elapsed = time.perf_counter() - stored[0]
    rows = Delivery.objects.filter(pk__gte=first)
    while rows.exclude(state=DeliveryState.SENT).exists():  # the last state write
        time.sleep(_TICK)
    used = cpu.per_message(len(messages))
    return len(messages) / elapsed, list(rows.values_list("pk", flat=True)), used


def _post_office(world: SandboxProcess, pks: list[int]) -> tuple[float, tuple[float, float]]:
    """The same rows queued again for post_office (their Delivery rows stay sent: the
    outbox does not take them)."""
    before = world.ask("delivered")
    cpu = _Cpu(world, [os.getpid()])
    Email.objects.filter(pk__in=pks).update(status=STATUS.queued)
    started = time.perf_counter()
    while sum(post_office_mail.send_queued()):
        pass
    _arrived(world, before + len(pks))
    return len(pks) / (time.perf_counter() - started), cpu.per_message(len(pks))


def _django(world: SandboxProcess, pks: list[int]) -> float:
    batch = [email.email_message() for email in Email.objects.filter(pk__in=pks)]
    before = world.ask("delivered")
    started = time.perf_counter()
    sent = DjangoSmtpBackend(
        host="127.0.0.1", port=world.info["smtp_port"], use_tls=True, timeout=10
    ).send_messages(batch)
    if sent != len(batch):
        raise SystemExit(f"P4: Django's backend sent {sent} of {len(batch)}")
    _arrived(world, before + len(batch))
    return len(batch) / (time.perf_counter() - started)


def _start_workers(var: Path) -> Processes:
    env = {
        **os.environ,
        # Raised for the run (the code path still reserves a slot per message); Exchange
        # allows 30 a minute.
        "SMTP_MAX_MESSAGES_PER_MINUTE": "1000000",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    queues = f"{settings.SEI_INTERACTIVE_QUEUE},{settings.CELERY_TASK_DEFAULT_QUEUE}"
    workers = Processes(env=env, queues=queues, logs=var / "p4-logs")
    for _ in range(WORKERS):
        workers.start_worker()
    deadline = time.monotonic() + 60
    while WorkerHeartbeat.objects.filter(worker__startswith="soak").count() < WORKERS:
        if time.monotonic() > deadline:
            workers.stop()
            raise SystemExit(f"P4: {WORKERS} workers did not start within a minute")
        time.sleep(0.1)
    return workers


def measure(
    world: SandboxProcess, *, rounds: int, messages: int, var: Path
) -> list[dict[str, Any]]:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # This process (post_office's sends) and the workers trust the sandbox's CA.
    os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = world.info["ca_bundle"]
    os.environ["SMTP_OAUTH_AUTHORITY_HOSTS"] = world.info["authority_host"]
    settings.SMTP_OAUTH_AUTHORITY_HOSTS = [world.info["authority_host"]]
    configure(world.info["form_values"])
    sender = world.info["form_values"]["sender_email"]
    tag = secrets.token_hex(3)

    def batch(round_number: int) -> list[EmailMessage]:
        return [
            EmailMessage(
                f"Outbox bench {tag} {round_number}.{n}",
                "A short body.\n" * 20,
                sender,
                [f"r{n}@x.example"],
            )
            for n in range(messages)
        ]

    workers = _start_workers(var)
    pids = [process.pid for process in workers.workers]
    rates: list[tuple[float, float, float]] = []
    cpu: list[tuple[float, ...]] = []
    try:
        _outbox(world, batch(-1)[:50], pids)  # warm-up: the workers' first token and connection
        for round_number in range(rounds):
            outbox, pks, outbox_cpu = _outbox(world, batch(round_number), pids)
            # Alternating which baseline follows the outbox directly.
            if round_number % 2:
                (library, library_cpu), django = _post_office(world, pks), _django(world, pks)
            else:
                django, (library, library_cpu) = _django(world, pks), _post_office(world, pks)
            rates.append((outbox, library, django))
            cpu.append((*outbox_cpu, *library_cpu))
    finally:
        workers.stop()
        # The page rows after this one count rows: these go.
        Email.objects.filter(subject__startswith=f"Outbox bench {tag}").delete()
    detail = "rounds (outbox, post_office, Django) messages/s: " + ", ".join(
        f"({o:.0f}, {p:.0f}, {d:.0f})" for o, p, d in rates
    )
    # Where the time goes: both sides send through the same engine to the same server.
    detail += (
        "; CPU ms per message (outbox's workers, server; post_office's process, server): "
        + ", ".join("({:.2f}, {:.2f}; {:.2f}, {:.2f})".format(*used) for used in cpu)
    )
    return [
        {
            "name": "P4 outbox drain",
            "measure": f"messages/s, the outbox with {WORKERS} workers ÷ django-post-office's "
            f"send_queued ({messages} messages)",
            "goal": "≥ 1.0",
            "values": [o / p for o, p, _ in rates],
            "detail": detail,
        },
        {
            "name": "P4 outbox ÷ Django",
            "measure": f"messages/s, the outbox with {WORKERS} workers ÷ Django's SMTP backend "
            "from one process",
            "goal": "≥ 0.5",
            "values": [o / d for o, _, d in rates],
            "detail": detail,
        },
    ]
