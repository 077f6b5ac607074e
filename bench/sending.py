"""P1 sending and P2 tokens, against the sandbox's Exchange and Entra stand-ins on loopback.

P1: messages per second through the console's backend (STARTTLS, XOAUTH2, one connection,
the cached token) over Django's own SMTP backend sending the same messages to the same
server with STARTTLS and no authentication. P2: token requests per batch.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend as DjangoSmtpBackend

from bench.sandbox_process import SandboxProcess
from smtp_settings.mail.backend import EmailBackend
from smtp_settings.mail.endpoint import MailSettings


def _messages(count: int) -> list[EmailMessage]:
    return [
        EmailMessage(
            f"Bench {n}", "A short body.\n" * 20, "bench@sandbox.example", [f"r{n}@x.example"]
        )
        for n in range(count)
    ]


def _timed(send: Any, messages: list[EmailMessage]) -> float:
    started = time.perf_counter()
    sent = send(messages)
    elapsed = time.perf_counter() - started
    if sent != len(messages):
        raise SystemExit(f"only {sent} of {len(messages)} messages were sent")
    return len(messages) / elapsed


def measure(world: SandboxProcess, *, rounds: int, messages: int) -> list[dict[str, Any]]:
    os.environ["SSL_CERT_FILE"] = world.info["ca_bundle"]
    os.environ["REQUESTS_CA_BUNDLE"] = world.info["ca_bundle"]
    values = world.info["form_values"]
    console_settings = MailSettings.from_values(values, secret=values["client_secret"])
    batch = _messages(messages)
    ratios: list[float] = []
    token_requests: list[float] = []
    rates: list[tuple[float, float]] = []

    def django_backend(batch: list[EmailMessage]) -> int:
        return DjangoSmtpBackend(
            host="127.0.0.1", port=world.info["smtp_port"], use_tls=True, timeout=10
        ).send_messages(batch)

    def console_backend(batch: list[EmailMessage]) -> int:
        return EmailBackend(mail_settings=console_settings).send_messages(batch)

    # A warm-up of each (imports, TLS session set-up, the first token), not counted...
    before = world.ask("token_requests")
    _timed(console_backend, batch[:1])
    first_tokens = world.ask("token_requests") - before
    _timed(django_backend, batch[:1])
    for round_number in range(rounds):
        # ...and the order alternates, so neither side always runs on a warmer machine.
        before = world.ask("token_requests")
        if round_number % 2:
            console = _timed(console_backend, batch)
            baseline = _timed(django_backend, batch)
        else:
            baseline = _timed(django_backend, batch)
            console = _timed(console_backend, batch)
        token_requests.append(world.ask("token_requests") - before)
        ratios.append(console / baseline)
        rates.append((console, baseline))
    return [
        {
            "name": "P1 sending",
            "measure": f"messages/s, console backend ÷ Django's SMTP backend ({messages} messages)",
            "goal": "≥ 0.9",
            "values": ratios,
            "detail": "rounds (console, Django) messages/s: "
            + ", ".join(f"({c:.0f}, {b:.0f})" for c, b in rates),
        },
        {
            "name": "P2 tokens",
            "measure": f"token requests for all {rounds * messages + 1} messages of the run",
            "goal": "1 (one per token lifetime)",
            "values": [first_tokens + sum(token_requests)],
            "detail": f"the first message asked {first_tokens}; each round of {messages} after it: "
            + ", ".join(f"{n:.0f}" for n in token_requests),
        },
    ]
