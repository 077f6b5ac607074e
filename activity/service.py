"""Writing to the activity trail, and reading it for the Activity page.

Everything that records imports this module; it imports nothing of the console, so the
dependencies point one way (smtp_settings and accounts -> activity).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from activity.models import Entry, Kind
from external_text import printable

SUMMARY_LENGTH = Entry._meta.get_field("summary").max_length or 500


def activity_record(
    *,
    kind: Kind | str,
    summary: str,
    actor: AbstractBaseUser | None = None,
    actor_name: str = "",
    address: str | None = None,
) -> Entry:
    """Add one entry. ``summary`` is shown to administrators as is: callers never pass a
    secret, a password, a code or a token in it. It is one line: a server's answer quoted in
    it cannot add a line break or a terminal escape (the mail engine cleans such text where
    it enters; this holds for whatever else a caller quotes)."""
    summary = printable(summary)
    if actor is not None and not actor.is_authenticated:
        actor = None
    name = actor_name or (actor.get_username() if actor is not None else "")
    if len(summary) > SUMMARY_LENGTH:
        summary = summary[: SUMMARY_LENGTH - 1] + "…"
    return Entry.objects.create(
        kind=str(kind),
        summary=summary,
        actor=actor,
        actor_name=name[:150],
        address=address or None,
    )


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def activity_entries(
    *,
    actor_id: int | None = None,
    day_from: date | None = None,
    day_to: date | None = None,
    kind: str = "",
) -> QuerySet[Entry]:
    """Newest first. Days are whole days in the console's time zone, both ends included;
    the range is a plain comparison on ``at`` so that the index serves it."""
    entries = Entry.objects.all()
    if actor_id is not None:
        entries = entries.filter(actor_id=actor_id)
    if day_from is not None:
        entries = entries.filter(at__gte=_day_start(day_from))
    if day_to is not None:
        entries = entries.filter(at__lt=_day_start(day_to + timedelta(days=1)))
    if kind:
        entries = entries.filter(kind=kind)
    return entries


def activity_page(
    *, entries: QuerySet[Entry], before: int | None = None, size: int = 50
) -> tuple[list[Entry], int | None]:
    """A page of ``entries`` older than entry ``before``, and where the next page starts if
    there is one. By position, not by page number: no count of the whole trail, which only
    grows, on every visit."""
    if before is not None:
        cursor = Entry.objects.filter(pk=before).values("at", "pk").first()
        if cursor is not None:
            entries = entries.filter(
                Q(at__lt=cursor["at"]) | Q(at=cursor["at"], pk__lt=cursor["pk"])
            )
    found = list(entries.order_by("-at", "-pk")[: size + 1])
    return found[:size], (found[size - 1].pk if len(found) > size else None)


def activity_people() -> QuerySet[AbstractBaseUser]:
    """Everyone who could appear in the trail, for the page's person filter: the users
    (a handful), not a search of the trail (which only grows)."""
    user_model = get_user_model()
    return user_model.objects.order_by(user_model.USERNAME_FIELD)
