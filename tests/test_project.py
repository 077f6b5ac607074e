"""The project around the app: start-up rules, deploy checks, README and docker-compose agree."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_SOURCE = (ROOT / "sei_admin" / "settings.py").read_text()
README = (ROOT / "README.md").read_text()
# Read outside settings.py: by `make run`, ensure_admin, and the postgres image.
OTHER_NAMES = {
    "PORT",
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_PASSWORD",
    "DJANGO_SUPERUSER_EMAIL",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    # Read by gunicorn.conf.py.
    "WEB_CONCURRENCY",
}


def settings_env_names() -> set[str]:
    names = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', SETTINGS_SOURCE))
    names |= set(re.findall(r'_required_secret\("([A-Z][A-Z0-9_]+)"\)', SETTINGS_SOURCE))
    return names


def readme_env_names() -> set[str]:
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", README, flags=re.MULTILINE))


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Nothing of the test run's own configuration: above all not DATABASE_URL, which would
    # point these commands at a real database instead of SQLite in a temporary folder.
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "SEI_", "CELERY_"))
        and k not in ("DATABASE_URL", "REDIS_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": "p" * 20 + Fernet.generate_key().decode(),
        "SEI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "console.example.com",
        "SEI_VAR_DIR": str(tmp_path),
    }


def test_settings_read_names_that_the_readme_documents() -> None:
    assert settings_env_names() - readme_env_names() == set()
    assert readme_env_names() - settings_env_names() <= OTHER_NAMES


def test_compose_services_use_the_project_commands_and_known_names() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    known = settings_env_names() | OTHER_NAMES
    for name in ("web", "worker", "beat"):
        service = services[name]
        assert service["build"] == "."
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets names the settings do not read: {unknown}"
        assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "SEI_ENCRYPTION_KEYS"} <= set(
            service["environment"]
        )
    command = " ".join
    assert "gunicorn sei_admin.wsgi" in command(services["web"]["command"])
    assert command(services["worker"]["command"]).startswith("celery -A sei_admin worker")
    assert command(services["beat"]["command"]).startswith("celery -A sei_admin beat")
    assert services["postgres"]["image"].startswith("postgres")
    assert services["redis"]["image"].startswith("redis")
    procfile = (ROOT / "Procfile").read_text()
    # make run serves as production does: gunicorn, threads from gunicorn.conf.py (a run
    # page's long poll must not hold a whole process, nor runserver's keep-alive stall).
    assert "web: gunicorn sei_admin.wsgi" in procfile
    assert 'worker_class = "gthread"' in (ROOT / "gunicorn.conf.py").read_text()
    # One worker runs beat's scheduler in a thread (tests/test_worker_as_make_run_starts_it.py).
    assert "celery -A sei_admin worker" in procfile and "--beat-thread" in procfile


def test_gunicorn_writes_no_access_log_that_would_hold_reset_tokens() -> None:
    # A reset or invitation link's path is its one-time token: request lines must not be
    # logged by default, under make run or in Docker.
    import runpy

    from gunicorn.config import Config

    config = Config()
    namespace = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    for name, value in namespace.items():
        if name in config.settings:
            config.set(name, value)
    assert config.accesslog is None
    for path in ("Procfile", "docker-compose.yml", "Dockerfile", "Makefile"):
        assert "access-log" not in (ROOT / path).read_text(), path


def test_production_settings_pass_the_deploy_check(tmp_path: Path) -> None:
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("", "SEI_ENCRYPTION_KEYS is not set"),
        ("not-a-fernet-key", "key number 1 is not a Fernet key"),
    ],
)
def test_missing_or_malformed_key_outside_development_stops_start_up(
    tmp_path: Path, keys: str, message: str
) -> None:
    env = {**production_env(tmp_path), "SEI_ENCRYPTION_KEYS": keys}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert message in result.stderr


def test_missing_secret_key_outside_development_stops_start_up(tmp_path: Path) -> None:
    env = {**production_env(tmp_path), "DJANGO_SECRET_KEY": ""}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_development_keeps_its_generated_secrets_across_restarts(tmp_path: Path) -> None:
    env = {"DJANGO_DEBUG": "true", "SEI_VAR_DIR": str(tmp_path)}
    assert run_manage("migrate", "--noinput", env=env).returncode == 0
    secrets_file = tmp_path / "dev-secrets.env"
    first = secrets_file.read_text()
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"

    created = run_manage("ensure_admin", env=env)
    assert "sign in as 'admin' with the password" in created.stdout
    again = run_manage("ensure_admin", env=env)
    assert "with the password" not in again.stdout
    assert secrets_file.read_text() == first


def test_first_administrator_comes_from_the_environment(tmp_path: Path) -> None:
    env = {
        "DJANGO_DEBUG": "true",
        "SEI_VAR_DIR": str(tmp_path),
        "DJANGO_SUPERUSER_USERNAME": "olivia",
        "DJANGO_SUPERUSER_PASSWORD": "a long enough passphrase",
        "DJANGO_SUPERUSER_EMAIL": "olivia@contoso.example",
    }
    assert run_manage("migrate", "--noinput", env=env).returncode == 0
    result = run_manage("ensure_admin", env=env)
    assert "sign in as 'olivia'" in result.stdout
    assert "a long enough passphrase" not in result.stdout


def test_mail_goes_to_the_outbox_and_beat_delivers_and_purges(tmp_path: Path) -> None:
    env = {"DJANGO_DEBUG": "true", "SEI_VAR_DIR": str(tmp_path)}
    code = (
        "from django.conf import settings as s; print(s.EMAIL_BACKEND); "
        "print(sorted(e['task'] for e in s.CELERY_BEAT_SCHEDULE.values()))"
    )
    result = run_manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    backend, schedule = result.stdout.splitlines()[-2:]
    assert backend == "smtp_settings.outbox.queue.OutboxBackend"
    assert "smtp_settings.tasks.deliver_outbox" in schedule
    assert "smtp_settings.tasks.purge_outbox" in schedule


def test_compose_migrates_once_first_checks_health_and_serves_http_on_a_laptop() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert " ".join(services["migrate"]["command"]) == "python manage.py migrate --noinput"
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert "migrate" not in " ".join(services[name]["command"]), name
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz/live" in " ".join(services["web"]["healthcheck"]["test"])
    environment = services["web"]["environment"]
    for name in (
        "DJANGO_SECURE_SSL_REDIRECT",
        "DJANGO_SESSION_COOKIE_SECURE",
        "DJANGO_CSRF_COOKIE_SECURE",
        "DJANGO_SECURE_PROXY_SSL_HEADER",
    ):
        assert environment[name].endswith(":-false}"), name  # plain HTTP unless told
    assert "http://localhost:8000" in environment["DJANGO_CSRF_TRUSTED_ORIGINS"]


@pytest.mark.parametrize(("debug", "expected"), [("false", "True"), ("true", "False")])
def test_two_factor_sign_in_is_required_unless_in_development(
    tmp_path: Path, debug: str, expected: str
) -> None:
    env = {**production_env(tmp_path), "DJANGO_DEBUG": debug}
    result = run_manage(
        "shell", "-c", "from django.conf import settings; print(settings.SEI_REQUIRE_2FA)", env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
