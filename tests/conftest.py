"""Shared fixtures: users of each kind and a valid Manage SMTP submission."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
CLIENT_SECRET = "Xq8~Qm2.n7Tz_pL4rS9vWc1yB6dE3fG5hJ0kK-"


@pytest.fixture
def admin_user(db: Any) -> User:
    return User.objects.create_superuser("root-admin", "admin@example.test", "correct horse 42")


@pytest.fixture
def admin_client(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def delegated_admin(db: Any) -> User:
    """Not a superuser, but holds the app's change permission."""
    user = User.objects.create_user("mail-admin", "mail-admin@example.test", "correct horse 42")
    user.user_permissions.add(Permission.objects.get(codename="change_smtpsettings"))
    return user


@pytest.fixture
def plain_user(db: Any) -> User:
    return User.objects.create_user("someone", "someone@example.test", "correct horse 42")


@pytest.fixture
def oauth_form_data() -> dict[str, Any]:
    """Everything an administrator types for Exchange Online with OAuth 2.0."""
    return {
        "smtp_server": "smtp.office365.com",
        "sender_email": "notifications@contoso.example",
        "port": "587",
        "auth_type": "oauth2",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "secret_expiration_alert": "on",
        "secret_expiration_date": "2099-05-31",
        "tenant_id": "",
        "token_endpoint": f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/token",
        "scopes": "https://outlook.office365.com/.default",
        "username": "",
        "password": "",
        "use_ssl_tls": "on",
        "use_sender_email": "on",
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The default hasher is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sandbox(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Entra and Exchange stand-ins with a ready tenant, trusted and allowed by the console."""
    from smtp_settings.mail import oauth

    from .sandbox.world import Sandbox

    world = Sandbox().start()
    monkeypatch.setenv("SSL_CERT_FILE", str(world.ca_bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(world.ca_bundle))
    settings.SMTP_OAUTH_AUTHORITY_HOSTS = [world.authority_host]
    settings.SMTP_NETWORK_TIMEOUT_SECONDS = 5.0
    oauth.forget_applications()
    yield world
    oauth.forget_applications()
    world.stop()


@pytest.fixture
def run_validation(admin_user: User) -> Any:
    """Validate form values in this process (the worker's code, without a broker).

    Returns the run as the page's JSON shows it, with its steps keyed by name.
    """
    from smtp_settings import validation
    from smtp_settings.forms import SmtpSettingsForm
    from smtp_settings.models import SmtpSettings, ValidationRun

    def run(values: dict[str, Any], *, recipient: str = "", before: Any = None) -> dict[str, Any]:
        form = SmtpSettingsForm(values, instance=SmtpSettings.load())
        assert form.is_valid(), form.errors
        started = validation.validation_run_start(
            values=form.cleaned_data, user=admin_user, test_recipient=recipient
        )
        if before is not None:
            before(started)
        validation.validation_run_execute(run_id=str(started.id))
        result = validation.validation_run_as_dict(run=ValidationRun.objects.get(pk=started.pk))
        result["by_step"] = {step["key"]: step for step in result["steps"]}
        return result

    return run


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # Rate limits live in the cache: one test's requests must not count against the next.
    from django.core.cache import cache

    cache.clear()
