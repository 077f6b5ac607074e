"""The Graph row (issue 20): messages per second through Microsoft Graph's sendMail ÷ through
SMTP (both the console's backend, the same messages, the sandbox's stand-ins on loopback),
and token requests per 1,000 Graph messages (one: the token lasts the whole run)."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage

from bench.sandbox_process import SandboxProcess
from bench.sending import _messages, _timed
from smtp_settings.mail import oauth
from smtp_settings.mail.backend import EmailBackend
from smtp_settings.mail.endpoint import GRAPH, MailSettings

GRAPH_MESSAGES_FOR_TOKENS = 1000


def measure(world: SandboxProcess, *, rounds: int, messages: int) -> list[dict[str, Any]]:
    os.environ["SSL_CERT_FILE"] = world.info["ca_bundle"]
    os.environ["REQUESTS_CA_BUNDLE"] = world.info["ca_bundle"]
    settings.SMTP_GRAPH_HOSTS = [world.info["graph_host"]]
    values = world.info["form_values"]
    smtp = MailSettings.from_values(values, secret=values["client_secret"])
    graph = MailSettings.from_values(
        {**values, "transport": GRAPH, "graph_host": world.info["graph_host"]},
        secret=values["client_secret"],
    )
    batch = _messages(messages)

    def through(mail: MailSettings) -> Any:
        def send(batch: list[EmailMessage]) -> int:
            return EmailBackend(mail_settings=mail).send_messages(batch)

        return send

    _timed(through(graph), batch[:1])  # warm-up: imports, TLS, the first Graph token
    _timed(through(smtp), batch[:1])
    ratios: list[float] = []
    rates: list[tuple[float, float]] = []
    for round_number in range(rounds):
        if round_number % 2:
            graph_rate, smtp_rate = _timed(through(graph), batch), _timed(through(smtp), batch)
        else:
            smtp_rate, graph_rate = _timed(through(smtp), batch), _timed(through(graph), batch)
        ratios.append(graph_rate / smtp_rate)
        rates.append((graph_rate, smtp_rate))
    # From a cold cache (a worker's first message): every token request is counted.
    oauth.forget_applications()
    before = world.ask("token_requests")
    _timed(through(graph), _messages(GRAPH_MESSAGES_FOR_TOKENS))
    tokens = world.ask("token_requests") - before
    return [
        {
            "name": "Graph sending",
            "measure": f"messages/s, Graph sendMail ÷ SMTP, console backend ({messages} messages)",
            "goal": "report",
            "values": ratios,
            "detail": "rounds (Graph, SMTP) messages/s: "
            + ", ".join(f"({g:.0f}, {s:.0f})" for g, s in rates),
        },
        {
            "name": "Graph tokens",
            "measure": f"token requests for {GRAPH_MESSAGES_FOR_TOKENS} Graph messages",
            "goal": "1 (one per token lifetime)",
            "values": [float(tokens)],
            "detail": "from a cold token cache; MSAL's cache then holds the Graph token",
        },
    ]
