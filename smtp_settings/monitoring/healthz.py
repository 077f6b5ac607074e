"""``/healthz`` for operators, on django-health-check: database, broker, worker, beat and mail.

HTTP 200 when every check passes, 503 otherwise; JSON for ``Accept: application/json``
or ``?format=json``. ``/healthz/live`` checks only that the web process and its database
answer: point a load balancer there, so that broken mail settings never take the page
that fixes them out of service. No check names a secret or a person.

Why a check fails (the worker is silent, the secret has expired, Redis does not answer) is
for operators: anonymous callers learn per check only "OK" or "unavailable". Signed-in
administrators, and callers with ``Authorization: Bearer <SEI_HEALTHZ_TOKEN>`` (monitoring),
see the words.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import json
import os
import secrets
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest
from django.utils.cache import patch_vary_headers
from health_check.base import HealthCheck, HealthCheckResult
from health_check.exceptions import HealthCheckException, ServiceUnavailable
from health_check.views import HealthCheckView

from smtp_settings import heartbeats
from smtp_settings.models import SmtpSettings, WorkerHeartbeat
from smtp_settings.monitoring import status
from smtp_settings.permissions import ADMINISTER_PERMISSION, second_factor_verified


class _ClosesConnections(abc.ABC):
    """Checks run in executor threads: their database connections are closed after each."""

    @abc.abstractmethod
    def check(self) -> None:
        """The probe: raises ``ServiceUnavailable`` with what is wrong."""

    def run(self) -> None:
        try:
            self.check()
        finally:
            close_old_connections()


@dataclasses.dataclass
class Broker(_ClosesConnections, HealthCheck):
    timeout = datetime.timedelta(seconds=3)

    def check(self) -> None:
        if settings.REDIS_URL:
            import redis

            client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
            )
            try:
                client.ping()
            except redis.RedisError as error:
                raise ServiceUnavailable(f"Redis does not answer: {type(error).__name__}") from None
            finally:
                client.close()
            return
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if not (folder.is_dir() and os.access(folder, os.W_OK)):
            raise ServiceUnavailable("The file-system broker's folder is missing or read-only")


@dataclasses.dataclass
class _Heartbeat(_ClosesConnections, HealthCheck):
    role: str = ""

    def check(self) -> None:
        age = heartbeats.heartbeat_age(self.role)
        if age is None:
            raise ServiceUnavailable(f"No {self.role} has reported yet")
        if age > heartbeats.heartbeat_stale_after():
            raise ServiceUnavailable(f"The {self.role} last reported {age:.0f} s ago")


@dataclasses.dataclass
class Worker(_Heartbeat):
    role: str = WorkerHeartbeat.WORKER


@dataclasses.dataclass
class Beat(_Heartbeat):
    role: str = WorkerHeartbeat.BEAT


_BACKGROUND = ("worker-gone", "beat-gone")


@dataclasses.dataclass
class Mail(_ClosesConnections, HealthCheck):
    def check(self) -> None:
        row = SmtpSettings.load()
        if not row.is_stored:
            raise ServiceUnavailable("Manage SMTP has no saved settings")
        # What stops mail now (the error banners); a secret that expires next week is a
        # warning, and a stopped worker or beat the Worker and Beat checks'.
        problems = [
            banner.text
            for banner in status.banners()
            if banner.severity == status.ERROR and banner.key not in _BACKGROUND
        ]
        if problems:
            raise ServiceUnavailable(" ".join(problems))


def mail_warnings() -> tuple[str, ...]:
    """What stops mail later, not now (the warning banners): a warning on /healthz, never a
    failure."""
    return tuple(banner.text for banner in status.banners() if banner.severity == status.WARNING)


class Withheld(HealthCheckException):
    """A failed check, as anonymous callers see it: that it failed, not why."""

    def __str__(self) -> str:
        return "unavailable"


def healthz_shows_details(*, request: HttpRequest) -> bool:
    """Whether this caller may read why a check fails: the monitoring token (compared in
    constant time), or an administrator whose session may open Administration."""
    token = settings.SEI_HEALTHZ_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and secrets.compare_digest(offered.strip().encode(), token.encode())
    ):
        return True
    user = request.user
    return bool(
        user.is_authenticated
        and user.has_perm(ADMINISTER_PERMISSION)
        and (not settings.SEI_REQUIRE_2FA or second_factor_verified(user))
    )


class HealthView(HealthCheckView):
    checks = (
        "health_check.checks.Database",
        Broker,
        Worker,
        Beat,
        Mail,
    )

    template_name = "smtp_settings/healthz.html"
    show_details = False
    # What will stop mail soon without stopping it now (a secret that expires within the
    # reminders' urgent days): /healthz stays 200, and says so to those who may read why.
    warnings: tuple[str, ...] = ()

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # The session and the permission are read from the database: not in the event loop.
        self.show_details = await sync_to_async(healthz_shows_details)(request=request)
        if self.show_details and self.checks is HealthView.checks:
            self.warnings = await sync_to_async(mail_warnings)()
        response = await super().get(request, *args, **kwargs)
        patch_vary_headers(response, ["Authorization", "Cookie"])
        return response

    # Every format django-health-check renders (HTML, JSON, text, feeds) reads
    # ``self.results``: withholding the words where they are stored covers them all.
    @property
    def results(self) -> list[HealthCheckResult]:
        return self._results

    @results.setter
    def results(self, results: list[HealthCheckResult]) -> None:
        if not self.show_details:
            results = [
                dataclasses.replace(result, error=Withheld("unavailable"))
                if result.error
                else result
                for result in results
            ]
        self._results = results

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "warnings": self.warnings}

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> Any:
        response = self._unavailable(super().render_to_response(context, **kwargs))
        # django-health-check's HTML page carries its own <style> block. Inline styles are
        # allowed on this page only (it shows no input of anyone's); scripts stay forbidden.
        response._csp_update = {"style-src": ["'unsafe-inline'"]}
        return response

    def render_to_response_json(self, status: int) -> Any:
        response = super().render_to_response_json(status)
        if self.warnings:
            body = json.loads(response.content)
            body["Warnings"] = list(self.warnings)
            response.content = json.dumps(body).encode()
        return self._unavailable(response)

    def render_to_response_text(self, status: int) -> Any:
        response = super().render_to_response_text(status)
        if self.warnings:
            response.content += "".join(f"Warning: {text}\n" for text in self.warnings).encode()
        return self._unavailable(response)

    @staticmethod
    def _unavailable(response: Any) -> Any:
        # Load balancers and compose healthchecks read 503 as "not in service".
        if response.status_code == 500:
            response.status_code = 503
        return response


class LiveView(HealthView):
    checks = ("health_check.checks.Database",)
