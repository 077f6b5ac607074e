"""P3 Validate: from the click to the verdict as the browser sees it, against the same
protocol work done by a bare script.

The console side is what `make run` starts: gunicorn serving the pages, a Celery worker
(its pool as in the Procfile) and the broker: the embedded file-system one, and Redis too
when ``REDIS_URL`` is set. The client does what the page's script does: POST Validate,
ask for the run's status at once, then long-poll with the mark it has seen until the
verdict. The baseline is a bare msal + smtplib script: a token, STARTTLS, AUTH XOAUTH2,
MAIL FROM, RCPT TO, RSET: the steps Validate takes, without the console around them.
Rounds alternate which side goes first.
"""

from __future__ import annotations

import base64
import functools
import os
import secrets
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msal
import requests

from bench.sandbox_process import SandboxProcess

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _procfile_worker_pool() -> list[str]:
    """The Procfile worker's pool and concurrency, so that P3 measures what `make run` runs."""
    line = next(
        ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("worker:")
    )
    return [word for word in line.split() if word.startswith(("--pool=", "--concurrency="))]


@functools.lru_cache(maxsize=1)
def _context(ca_bundle: str) -> ssl.SSLContext:
    # Read once, as the console reads its trust once: the baseline does the protocol's
    # work and no more.
    return ssl.create_default_context(cafile=ca_bundle)


class _Adapter(requests.adapters.HTTPAdapter):
    """HTTPS with that one context; without this, requests has urllib3 load a CA file into
    it for every new connection (about 20 ms each), which the console does not pay."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        conn.ca_certs = None


def bare_validate(values: dict[str, str], ca_bundle: str, *, tuned: bool = False) -> float:
    """The protocol work alone; returns seconds.

    As a script is usually written (the issue's baseline), each run builds its TLS context
    and lets requests load its CA file for each connection; ``tuned`` keeps one context,
    as the console does, so that only the protocol's own work is left."""
    started = time.perf_counter()
    if tuned:
        context = _context(ca_bundle)
        http = requests.Session()
        http.trust_env = False
        http.mount("https://", _Adapter(context))
    else:
        context = ssl.create_default_context(cafile=ca_bundle)
        http = requests.Session()
    app = msal.ConfidentialClientApplication(
        values["client_id"],
        client_credential=values["client_secret"],
        authority=values["token_endpoint"].rsplit("/oauth2/", 1)[0],
        http_client=http,
        # As the console does for a host that is not Microsoft's: never ask
        # login.microsoftonline.com (loopback only here).
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(scopes=[values["scopes"]])
    if "access_token" not in token:
        raise SystemExit(f"bare script: no token: {token.get('error_description')}")
    with smtplib.SMTP(values["smtp_server"], int(values["port"]), timeout=10) as smtp:
        smtp.starttls(context=context)
        smtp.ehlo()
        sender = values["sender_email"]
        auth = f"user={sender}\x01auth=Bearer {token['access_token']}\x01\x01"
        # The token goes after the 334, as the console sends it: a JWT makes the line
        # longer than a server must accept with the command.
        smtp.docmd("AUTH", "XOAUTH2")
        code, answer = smtp.docmd(base64.b64encode(auth.encode()).decode())
        if code != 235:
            raise SystemExit(f"bare script: AUTH refused: {code} {answer!r}")
        smtp.mail(sender)
        smtp.rcpt(sender)
        smtp.rset()
    return time.perf_counter() - started


class Console:
    """gunicorn and a Celery worker on a database of their own, and a signed-in client."""

    def __init__(self, *, info: dict[str, Any], var: Path, redis_url: str = "") -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SEI_VAR_DIR": str(var),
            "DJANGO_SESSION_COOKIE_SECURE": "false",
            "DJANGO_CSRF_COOKIE_SECURE": "false",
            "SMTP_OAUTH_AUTHORITY_HOSTS": info["authority_host"],
            "SSL_CERT_FILE": info["ca_bundle"],
            "REQUESTS_CA_BUNDLE": info["ca_bundle"],
            "SMTP_VALIDATION_MAX_RUNS": "100000",
            # A queue of its own: other consoles may share the Redis server.
            "CELERY_TASK_DEFAULT_QUEUE": f"sei-bench-{secrets.token_hex(4)}",
            "DJANGO_LOG_LEVEL": "WARNING",
        }
        self.env.pop("REDIS_URL", None)
        self.env.pop("SEI_CACHE_URL", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.processes: list[subprocess.Popen[bytes]] = []
        self.http = requests.Session()
        self.database = var / "sei_admin.sqlite3"
        # Per round, ms: web POST, row made → claimed, claimed → verdict, verdict → page.
        self.phases: list[tuple[float, float, float, float]] = []

    def _start(self, *command: str) -> None:
        self.processes.append(
            subprocess.Popen(  # noqa: S603 - our own programs, fixed arguments
                command,
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def start(self) -> Console:
        python = str(BIN / "python")
        setup = (
            "import django; django.setup();"
            "from django.core.management import call_command; call_command('migrate', verbosity=0);"
            "from django.contrib.auth.models import User; from django.test import Client;"
            # A second run on the same PostgreSQL database finds the first run's user.
            "User.objects.filter(username='bench').delete();"
            "u = User.objects.create_superuser('bench', 'bench@sandbox.example', 'a long one 77');"
            "c = Client(); c.force_login(u); print(c.cookies['sessionid'].value)"
        )
        session = subprocess.run(  # noqa: S603
            [python, "-c", setup],
            cwd=ROOT,
            env={**self.env, "DJANGO_SETTINGS_MODULE": "sei_admin.settings"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        self._start(str(BIN / "gunicorn"), "sei_admin.wsgi", "--bind", f"127.0.0.1:{self.port}")
        self._start(
            str(BIN / "celery"),
            "-A",
            "sei_admin",
            "worker",
            *_procfile_worker_pool(),
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
        )
        self.http.cookies.set("sessionid", session)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                page = self.http.get(f"{self.base}/administration/smtp/", timeout=5)
                if page.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("P3: the console did not start within a minute")
        self.csrf = self.http.cookies["csrftoken"]
        return self

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.env.get("REDIS_URL"):
            # The Redis server is shared: the bench's queue and its binding go with it.
            import redis

            default = self.env["CELERY_TASK_DEFAULT_QUEUE"]
            client = redis.Redis.from_url(self.env["REDIS_URL"])
            for queue in (default, f"{default}-interactive"):
                client.delete(queue, f"_kombu.binding.{queue}")

    def validate(self, values: dict[str, str]) -> tuple[float, float, float]:
        """Seconds from the click to: the steps on the page (the POST's answer carries them),
        the first step's result, the verdict."""
        clicked = time.time()
        started = time.perf_counter()
        response = self.http.post(
            f"{self.base}/administration/smtp/validate/",
            data={**values, "test_recipient": ""},
            headers={"Accept": "application/json", "X-CSRFToken": self.csrf},
            timeout=30,
        )
        if response.status_code != 202:
            raise SystemExit(f"P3: Validate refused: {response.status_code} {response.text[:300]}")
        answer = response.json()
        if "Token" not in answer["html"]:
            raise SystemExit("P3: the Validate answer does not show the run's steps")
        status_url = self.base + answer["status_url"]
        shown = time.perf_counter() - started
        first_step = 0.0
        seen: str | None = answer["mark"]
        while True:
            params = {} if seen is None else {"seen": seen}
            run = self.http.get(
                status_url, params=params, headers={"Accept": "application/json"}, timeout=30
            ).json()
            now = time.perf_counter() - started
            if not first_step and run["steps"][0]["status"] not in ("pending", "running"):
                first_step = now
            if run["finished"]:
                if run["status"] != "passed":
                    raise SystemExit(f"P3: the run did not pass: {run['summary']}")
                self._phases(answer["run"], clicked, shown, clicked + now)
                return shown, first_step, now
            seen = run["mark"]

    def _phases(self, run_id: str, clicked: float, shown: float, seen: float) -> None:
        """Where a round's time went, from the run row's own times (same machine's clock)."""
        if not self.database.exists():  # a console on PostgreSQL: no breakdown
            return
        with sqlite3.connect(self.database) as db:
            row = db.execute(
                "SELECT created_at, started_at, finished_at FROM smtp_settings_validationrun"
                " WHERE id = ?",
                (run_id.replace("-", ""),),
            ).fetchone()
        created, started, finished = (
            datetime.fromisoformat(v).replace(tzinfo=UTC).timestamp() for v in row
        )
        self.phases.append(
            (
                shown * 1000,
                (started - created) * 1000,
                (finished - started) * 1000,
                (seen - finished) * 1000,
            )
        )


def _breakdown(phases: list[tuple[float, float, float, float]]) -> str:
    if not phases:
        return "no breakdown (the console's database is not SQLite)"
    names = ("web POST", "row made → claimed", "claimed → verdict written", "verdict → page")
    return "median ms: " + ", ".join(
        f"{name} {_median([p[i] for p in phases]):.1f}" for i, name in enumerate(names)
    )


@contextmanager
def _console(**kwargs: Any) -> Iterator[Console]:
    console = Console(**kwargs)
    try:
        yield console.start()
    finally:
        console.stop()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def measure(
    world: SandboxProcess, *, rounds: int, var: Path, redis_url: str = ""
) -> list[dict[str, Any]]:
    info = world.info
    values = info["form_values"]
    # MSAL's requests session trusts what these name, as the console's processes do.
    os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = info["ca_bundle"]
    brokers = [("file-system broker", "")] + ([("Redis", redis_url)] if redis_url else [])
    rows = []
    for label, broker in brokers:
        folder = var / f"p3-{'redis' if broker else 'files'}"
        folder.mkdir(parents=True, exist_ok=True)
        with _console(info=info, var=folder, redis_url=broker) as console:
            # Warm-up, not counted: imports in the worker's child, the first TLS handshakes.
            console.validate(values)
            console.phases.clear()
            bare_validate(values, info["ca_bundle"])
            totals, firsts, samples, tuned_ratios = [], [], [], []
            for round_number in range(rounds):
                if round_number % 2:
                    shown, first, done = console.validate(values)
                    bare = bare_validate(values, info["ca_bundle"])
                    tuned = bare_validate(values, info["ca_bundle"], tuned=True)
                else:
                    tuned = bare_validate(values, info["ca_bundle"], tuned=True)
                    bare = bare_validate(values, info["ca_bundle"])
                    shown, first, done = console.validate(values)
                totals.append(done / bare)
                firsts.append(first / bare)
                tuned_ratios.append(done / tuned)
                samples.append((bare, shown, first, done, tuned))
            phases = _breakdown(console.phases)
        detail = (
            "rounds (bare script; console: run shown, first step, verdict; tuned script) ms: "
            + ", ".join(
                f"({b * 1000:.0f}; {s * 1000:.0f}, {f * 1000:.0f}, {d * 1000:.0f}; {t * 1000:.0f})"
                for b, s, f, d, t in samples
            )
        )
        rows.append(
            {
                "name": f"P3 Validate, {label}",
                "measure": "click to verdict as the page sees it ÷ the bare msal + smtplib script",
                "goal": "≤ 1.5 (median)",
                "values": totals,
                "detail": detail,
            }
        )
        rows.append(
            {
                "name": f"P3 steps shown, {label}",
                "measure": "click to the run's steps on the page ÷ the bare script",
                "goal": "< 0.25",
                "values": [sample[1] / sample[0] for sample in samples],
                "detail": f"median bare script {_median([x[0] for x in samples]) * 1000:.0f} ms",
            }
        )
        rows.append(
            {
                "name": f"P3 first result, {label}",
                "measure": "click to the Token step's result on the page ÷ the bare script",
                "goal": "(for reference)",
                "values": firsts,
                "detail": "the token request alone is about half of the bare script",
            }
        )
        rows.append(
            {
                "name": f"P3 against a tuned script, {label}",
                "measure": "click to verdict ÷ the same script with one TLS context for all runs",
                "goal": "≤ 2 (median)",
                "values": tuned_ratios,
                "detail": f"median tuned script {_median([x[4] for x in samples]) * 1000:.0f} ms: "
                "the protocol's own work, without loading CA files. Where the console's "
                "time goes, " + phases,
            }
        )
    return rows
