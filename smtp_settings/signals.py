"""Signals Manage SMTP sends for others to act on, so that it imports none of them."""

from __future__ import annotations

from django.dispatch import Signal

# Something administrators must hear about, beside the e-mail that already goes to them:
# key (one occurrence: raising it again does nothing), kind, title, body, and drops_pending
# (kinds whose undelivered alerts are no longer true).
alert_raised = Signal()

# A turn of the outbox for whoever tells administrators (monitoring.outbox_alerts): turn is
# "held", "released", "failed" (email_id: a message failed for good) or "sent" (a drain that
# began at ``began`` sent mail); summary is the activity trail's words, when there are some.
outbox_turned = Signal()
