"""``make soak`` (``python -m soak``): one soak run on throw-away data, its table printed
and saved under var/soak/; exits non-zero when anything is lost or stuck or a goal is missed.

PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set, else SQLite and the
file-system broker. On PostgreSQL the run makes a database of its own on that server and
drops it after; on Redis it starts a private redis-server (SOAK_REDIS_PORT, 8725) and
never touches the one REDIS_URL names.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from soak import report
from soak.brokers import FolderCut, PrivateRedis
from soak.config import SoakConfig

if TYPE_CHECKING:  # imported in main(), once the environment is set
    from tests.sandbox.world import Sandbox

OUT = Path("var/soak")


def _environment(var: Path, sandbox: Sandbox) -> None:
    from cryptography.fernet import Fernet

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sei_admin.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("SEI_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ["SEI_VAR_DIR"] = str(var)
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    os.environ["SMTP_OAUTH_AUTHORITY_HOSTS"] = sandbox.authority_host
    os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(sandbox.ca_bundle)
    # The limits are raised for the run: it measures the outbox, not Exchange's 30 a minute.
    os.environ.setdefault("SMTP_MAX_MESSAGES_PER_MINUTE", "100000")
    # A queue of its own, whatever else shares the broker.
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = f"sei-soak-{secrets.token_hex(4)}"
    os.environ.pop("SEI_CACHE_URL", None)


def _throwaway_database(url: str) -> tuple[str, str]:
    """A new database beside the one DATABASE_URL names; returns its URL and name."""
    import psycopg

    name = f"sei_soak_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), name


def _drop_database(url: str, name: str) -> None:
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    config = SoakConfig.from_environment()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    var = Path(tempfile.mkdtemp(prefix="sei-soak-var-"))
    logs = OUT / f"logs-{stamp}"
    from tests.sandbox import exchange
    from tests.sandbox.world import Sandbox

    # The stand-in's limits raised for the run: every worker's connection, and Validate's.
    exchange.MAX_CONNECTIONS_PER_MAILBOX = 50
    sandbox = Sandbox().start()
    database_url = os.environ.get("DATABASE_URL", "")
    dropped: tuple[str, str] | None = None
    redis: PrivateRedis | None = None
    try:
        _environment(var, sandbox)
        if database_url:
            os.environ["DATABASE_URL"], name = _throwaway_database(database_url)
            dropped = (database_url, name)
        if os.environ.get("REDIS_URL"):
            redis = PrivateRedis(config.redis_port, var / "redis").start()
            os.environ["REDIS_URL"] = redis.url
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from soak.run import run

        call_command("migrate", verbosity=0)
        cut = (
            redis
            if redis
            else FolderCut(Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).parent)
        )
        result = run(config, sandbox=sandbox, worker_env=dict(os.environ), logs=logs, cut=cut)
        from django.db import connections

        connections.close_all()
    finally:
        if redis is not None:
            redis.stop()
        sandbox.stop()
        if dropped is not None:
            _drop_database(*dropped)
        shutil.rmtree(var, ignore_errors=True)
    result["started"] = f"{started:%Y-%m-%d %H:%M:%S}"
    result["database"] = "PostgreSQL" if database_url else "SQLite"
    result["broker_label"] = (
        f"a private redis-server on 127.0.0.1:{config.redis_port}"
        if redis
        else "the file-system broker (sei_admin.broker)"
    )
    result["logs"] = str(logs)
    result["goals"] = report.goals(result)
    text = report.table(result)
    print(text)
    path = report.save(result, text, OUT)
    print(f"\nSaved to {path} (and .json); worker logs in {logs}")
    # A goal not measured (None) fails nothing; one missed does.
    return 0 if all(goal["met"] is not False for goal in result["goals"]) else 1


if __name__ == "__main__":
    sys.exit(main())
