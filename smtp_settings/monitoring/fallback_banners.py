"""The fallback connection in the banners (issue 20): mail sent through it, since when and
why; the primary saved or validated since, and so tried first again; both connections
failed, each one's diagnosis, and mail held."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from smtp_settings.models import Delivery, DeliveryState, RunStatus, SmtpSettings, ValidationRun
from smtp_settings.monitoring.banner import INFO, WARNING, Banner


def fallback_banners(*, row: SmtpSettings, verdict: ValidationRun | None) -> list[Banner]:
    """While the latest message went through the fallback: since when and the primary's
    failure; or, once the primary was saved or passed Validate after that message, that it
    is tried first again (no message needs to leave before the page says so)."""
    sent = Delivery.objects.filter(state=DeliveryState.SENT)
    last_primary = (
        sent.filter(connection="primary")
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )
    episode = sent.filter(connection="fallback")
    if last_primary is not None:
        episode = episode.filter(sent_at__gt=last_primary)
    first = episode.order_by("sent_at").values_list("sent_at", flat=True).first()
    latest = (
        episode.order_by("-sent_at").values("sent_at", "last_error", "cause", "diagnosis").first()
    )
    if first is None or latest is None:
        return []
    since = timezone.localtime(first)
    renewed = _primary_renewed(row, verdict, after=latest["sent_at"])
    if renewed is not None:
        what, at = renewed
        until = f"{timezone.localtime(latest['sent_at']):%H:%M}"
        when = f"{since:%Y-%m-%d %H:%M}" + ("" if until == f"{since:%H:%M}" else f" to {until}")
        return [
            Banner(
                "fallback-retry",
                f"Mail went through the fallback connection ({when}). The primary connection "
                f"{what} at {timezone.localtime(at):%H:%M}, so it is tried first again from "
                "the next message; if it still cannot deliver, the fallback takes over again.",
                severity=INFO,
                cause="fallback-retry",
            )
        ]
    why = latest["cause"] or latest["last_error"]
    return [
        Banner(
            "fallback-active",
            f"Mail is sent through the fallback since {since:%Y-%m-%d %H:%M}: the primary "
            f"connection cannot deliver. {why} Fix the primary in Manage SMTP; once it "
            "works it takes over again.",
            severity=WARNING,
            cause=f"fallback:{latest['diagnosis'] or why}",
        )
    ]


def _primary_renewed(
    row: SmtpSettings, verdict: ValidationRun | None, *, after: datetime
) -> tuple[str, datetime] | None:
    """The latest of the primary's Save and its saved values' passing Validate, if later
    than ``after``."""
    found: list[tuple[str, datetime]] = []
    if row.is_stored and row.updated_at is not None and row.updated_at > after:
        found.append(("was saved", row.updated_at))
    if (
        verdict is not None
        and verdict.status == RunStatus.PASSED
        and verdict.finished_at is not None
        and verdict.finished_at > after
    ):
        found.append(("passed Validate", verdict.finished_at))
    return max(found, key=lambda item: item[1]) if found else None


def held_by_both(held: dict[str, Any], messages: str) -> tuple[str, str] | None:
    """When mail is held because both connections failed: the held banner's text, and what
    to add to an earlier banner of the primary's cause. None otherwise."""
    routes = held.get("routes") or {}
    primary, fallback = routes.get("primary") or {}, routes.get("fallback") or {}
    if not fallback.get("error"):
        return None
    wait = "it goes" if messages.startswith("1 ") else "they go"
    primary_why = held.get("cause") or primary.get("cause") or primary.get("error", "")
    fallback_why = fallback.get("cause") or fallback["error"]
    fallback_part = f"The fallback connection ({fallback.get('route', '')}): {fallback_why}"
    text = (
        f"Both connections failed: {messages} held. The primary connection "
        f"({primary.get('route', '')}): {primary_why} {fallback_part} Nothing is lost: "
        f"{wait} out at the next try: fix either connection, then Save it (or Retry now in "
        "the Outbox after a fix made in Entra ID or Exchange)."
    )
    also = (
        f"That is the primary connection ({primary.get('route', '')}). {fallback_part} Both "
        f"failed: {messages} held until one is fixed and saved (or Retry now in the Outbox)."
    )
    return text, also
