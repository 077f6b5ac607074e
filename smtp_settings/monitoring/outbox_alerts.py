"""The outbox's turns told to administrators, by e-mail and to every alert destination
(``alert_raised``): mail held, mail leaving again after a release, a message failed for good.

One hold is one occurrence until mail leaves again. Save (or Retry) releases the held
messages for one more attempt with the saved settings; when those still fail, the first
attempt holds everything again within the second. That is the same hold going on: it is not
told again, and "mail leaves again" is told once a message has left after a release, not at
the release (which would be untrue whenever the settings still fail).

E-mail goes through the very outbox it tells about, so:
- the "held" e-mail is itself held; a release withdraws it if it has not left (it would
  arrive after the hold it announces), and then the end of the hold is not e-mailed either:
  nobody heard of the hold by e-mail, so its end is no news to act on (the destinations, the
  Outbox page and the Activity trail have both);
- a message that failed for good which is itself an alert e-mail raises no new e-mail (no
  loop); the destinations still hear of it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from post_office.models import Email

from activity.models import Entry, Kind
from smtp_settings import outbox
from smtp_settings.links import console_url
from smtp_settings.models import Delivery, DeliveryState, SmtpSettings
from smtp_settings.monitoring.alerts import (
    alert_recipients,
    alert_send,
    alert_subject,
    manage_smtp_url,
)
from smtp_settings.signals import alert_raised, outbox_turned

HELD, RELEASED, FAILED = "outbox.held", "outbox.released", "outbox.failed"
HELD_TITLE = "Mail is held: nothing leaves the console's outbox"
RELEASED_TITLE = "Mail leaves again: the held messages were released"
FAILED_TITLE = "A message failed for good and will not be sent"


@receiver(outbox_turned)
def _turned(sender: Any, *, turn: str, **event: Any) -> None:
    event.pop("signal", None)
    {
        "held": outbox_held_tell,
        "released": outbox_released_tell,
        "sent": outbox_sent_tell,
        "failed": outbox_failed_tell,
    }[turn](**event)


def _outbox_url() -> str:
    return console_url(reverse("smtp_settings:outbox"))


def _when(at: datetime) -> str:
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M %Z}"


def _recipients() -> list[str]:
    row = SmtpSettings.objects.filter(pk=SmtpSettings.SINGLETON_PK).first()
    return alert_recipients(settings_row=row or SmtpSettings())


def outbox_held_tell(*, summary: str, at: datetime, entry_id: int) -> None:
    """A hold: told once until mail leaves again. The hold is named by its oldest held
    message: held again after a release that sent nothing, that message is still the oldest
    (the same hold); once the held messages have left, a later hold has a new one."""
    oldest = (
        Delivery.objects.filter(state=DeliveryState.HELD)
        .order_by("pk")
        .values_list("pk", "email__created")
        .first()
    )
    if oldest is None:
        return
    body = (
        f"Since {_when(at)}. {summary}\n\nWhat failed, message by message: {_outbox_url()}\n"
        f"Fix the settings (then Validate and Save, which releases the held mail): "
        f"{manage_smtp_url()}\n"
    )
    told = Email.objects.filter(subject=alert_subject(HELD_TITLE), created__gte=oldest[1])
    if not told.exists():
        # Held itself (it joins the held messages), withdrawn if the hold ends first.
        alert_send(subject=HELD_TITLE, body=body, recipients=_recipients())
    alert_raised.send(
        sender=Delivery,
        key=f"outbox-held:{oldest[0]}",
        kind=HELD,
        title=HELD_TITLE,
        body=body,
        drops_pending=(RELEASED,),
    )


def outbox_released_tell(*, summary: str, at: datetime, entry_id: int) -> None:
    """A release: the "held" e-mails that have not left would arrive after the hold they
    announce, so they are withdrawn. Nothing is told yet: see ``outbox_sent_tell``."""
    outbox.outbox_withdraw(
        subject=alert_subject(HELD_TITLE),
        reason=f"Not sent: no longer true, the held messages were released at {_when(at)} "
        "before it left.",
    )


def outbox_sent_tell(*, began: datetime) -> None:
    """Mail left: if it is the first since a release that ended a hold, the hold is over."""
    held = Entry.objects.filter(kind=Kind.OUTBOX_HELD).order_by("-at", "-pk").first()
    released = Entry.objects.filter(kind=Kind.OUTBOX_RELEASED).order_by("-at", "-pk").first()
    if held is None or released is None or released.at < held.at:
        return
    sent = Delivery.objects.filter(state=DeliveryState.SENT)
    if sent.filter(sent_at__gte=released.at, sent_at__lt=began).exists():
        return  # an earlier drain sent after this release and told it
    body = (
        f"At {_when(timezone.now())}, mail left the outbox again. {released.summary}\n\n"
        f"Outbox: {_outbox_url()}\n"
    )
    held_mail_left = sent.filter(
        sent_at__gte=held.at, email__subject=alert_subject(HELD_TITLE)
    ).exists()
    told = Email.objects.filter(subject=alert_subject(RELEASED_TITLE), created__gte=released.at)
    if held_mail_left and not told.exists():
        alert_send(subject=RELEASED_TITLE, body=body, recipients=_recipients())
    alert_raised.send(
        sender=Delivery,
        key=f"outbox-released:{released.pk}",
        kind=RELEASED,
        title=RELEASED_TITLE,
        body=body,
        drops_pending=(HELD,),
    )


# Failures for good are told once per quarter hour of the clock. A burst (a list with 500
# dead addresses) would otherwise be 500 e-mails to every administrator, which share the
# sender mailbox's 30 messages a minute with the mail that matters, and 500 chat messages.
FAILED_GROUP = timedelta(minutes=15)


def _group_start(at: datetime) -> datetime:
    step = int(FAILED_GROUP.total_seconds())
    return datetime.fromtimestamp(int(at.timestamp()) // step * step, tz=UTC)


def outbox_failed_tell(*, email_id: int, summary: str, at: datetime, entry_id: int) -> None:
    """A message failed for good: e-mailed unless it is itself an alert (which would loop),
    and only the first of its quarter hour (the others are in the Outbox)."""
    start = _group_start(at)
    earlier = Entry.objects.filter(kind=Kind.OUTBOX_FAILED, at__gte=start, pk__lt=entry_id)
    if earlier.exists():
        return  # told by the first failure of this quarter hour
    until = _when(start + FAILED_GROUP)
    body = (
        f"At {_when(at)}. {summary}\n\nThe message and how to retry it: {_outbox_url()}\n\n"
        f"Other messages that fail for good before {until} are not told one by one: the "
        "Outbox lists each of them.\n"
    )
    if not outbox.outbox_is_alert(email_id=email_id):
        alert_send(subject=FAILED_TITLE, body=body, recipients=_recipients())
    alert_raised.send(
        sender=Delivery, key=f"outbox-failed:{entry_id}", kind=FAILED, title=FAILED_TITLE, body=body
    )
