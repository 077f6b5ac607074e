"""Apprise, behind the few calls the console needs: read a destination URL, and send one
alert to it within a deadline. Nothing here knows the database."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import apprise

# Apprise waits this long for a connection and for each read; the whole send has a deadline
# of its own (a server that trickles its answer would otherwise hold a page or a task).
_SOCKET_SECONDS = 4.0


class UnusableDestination(ValueError):
    """A URL Apprise cannot send to, or one that would turn TLS verification off."""


@dataclass(frozen=True)
class Reading:
    service: str
    masked_url: str


@dataclass(frozen=True)
class Outcome:
    ok: bool
    answer: str


def read(url: str) -> Reading:
    plugin = _plugin(url)
    return Reading(service=str(plugin.service_name), masked_url=_masked(plugin))


# How a service marks an alert (colour, icon): by how bad the news is.
SEVERITIES = {"failure": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING,
              "success": apprise.NotifyType.SUCCESS, "info": apprise.NotifyType.INFO}  # fmt: skip


def send(
    url: str, *, title: str, body: str, deadline_seconds: float, severity: str = "info"
) -> Outcome:
    """Send one alert; never raises for the service's sake. The answer names what the
    service said, with every part of the URL that may be a token left out."""
    try:
        plugin = _plugin(url)
    except UnusableDestination as error:
        return Outcome(False, str(error))
    # Never shorter than the deadline itself: a socket timing out at the same moment would
    # race the deadline and a silent server read as a "connection error" (seen under load).
    # They still end the thread soon after the deadline has answered.
    socket_seconds = min(_SOCKET_SECONDS, deadline_seconds + 1.0)
    plugin.socket_connect_timeout = plugin.socket_read_timeout = socket_seconds
    result: list[bool] = []
    with apprise.LogCapture(level=logging.WARNING) as log:
        worker = threading.Thread(
            target=lambda: result.append(
                bool(plugin.notify(body=body, title=title, notify_type=SEVERITIES[severity]))
            ),
            name="alert-send",
            daemon=True,
        )
        worker.start()
        worker.join(deadline_seconds)
        said = log.getvalue()
    if worker.is_alive():
        return Outcome(False, f"No answer within {deadline_seconds:g} s.")
    answer = _scrubbed(said, url)
    if result and result[0]:
        return Outcome(True, answer or f"{plugin.service_name} accepted the alert.")
    return Outcome(False, answer or f"{plugin.service_name} did not accept the alert.")


def _plugin(url: str) -> apprise.NotifyBase:
    plugin = apprise.Apprise.instantiate(url.strip())
    if plugin is None:
        raise UnusableDestination(
            "Apprise does not know this URL. Start it with the service's scheme, for example "
            "workflows:// (Microsoft Teams), slack://, discord://, ntfys://, mailto:// or "
            "jsons:// for a webhook."
        )
    if getattr(plugin, "secure", False) and not plugin.verify_certificate:
        raise UnusableDestination(
            "This URL turns certificate checks off (verify=no): alerts carry links into the "
            "console and go only where TLS is verified."
        )
    return plugin


def _masked(plugin: apprise.NotifyBase) -> str:
    # Apprise masks the parts it knows are tokens; a webhook's path is often one too.
    parts = urlsplit(plugin.url(privacy=True))
    return f"{parts.scheme}://{parts.netloc}{'/…' if parts.path.strip('/') else ''}"


def _scrubbed(text: str, url: str) -> str:
    lines = [line.split(" - ", 2)[-1].strip() for line in text.splitlines() if " - " in line]
    answer = " ".join(line for line in lines if line)
    parts = urlsplit(url.strip())
    secrets = [parts.username, parts.password, *parts.path.split("/"), parts.query, url.strip()]
    if "." not in (parts.hostname or "") and parts.hostname != "localhost":
        secrets.append(parts.netloc)  # a service whose "host" is a token (slack://T.../)
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        answer = answer.replace(secret, "…")
    return answer[:500]
