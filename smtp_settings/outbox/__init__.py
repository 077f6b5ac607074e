"""The outbox: every e-mail is stored first, then delivered by a worker through Manage SMTP.

Its face: callers use ``from smtp_settings import outbox`` and ``outbox.outbox_accept(...)``;
the modules inside are its own.
"""

from __future__ import annotations

from smtp_settings.outbox.service import (
    DELIVER_TASK,
    SENT_COUNT_WINDOW,
    outbox_accept,
    outbox_attempts,
    outbox_body_withheld,
    outbox_counts,
    outbox_deliver_due,
    outbox_delivery_request,
    outbox_delivery_request_if_pending,
    outbox_discard,
    outbox_held,
    outbox_is_alert,
    outbox_last_sent,
    outbox_page,
    outbox_postpone,
    outbox_purge,
    outbox_release_held,
    outbox_retry,
    outbox_withdraw,
)
